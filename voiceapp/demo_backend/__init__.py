"""DEMO ONLY: the backend of the demo tenant, Demo Dental, served by the platform itself under /demo-backend/.

It stands in for what a real tenant runs on its own servers: the booking system the demo agent's tools
call (check availability, book, cancel, reschedule). It answers only while DEBUG is on and the demo is
seeded (`seed_demo`), only for calls of the demo tenant, and is no part of the platform's product
(docs/integrations.md#the-demo-backend).
"""
