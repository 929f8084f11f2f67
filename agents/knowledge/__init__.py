"""An agent's knowledge base: documents read from their formats (`formats`, `fetch`), cut into chunks
(`chunking`), embedded in the background (`embedding`, `runner`), stored behind one vector-store interface
(`store`) and searched per caller turn by meaning and by words (`search`, from a cached `snapshot`).

docs/knowledge.md describes the whole; the services in agents/services.py are the way in.
"""
