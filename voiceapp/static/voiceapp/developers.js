/* Developers pages: copy a secret that is shown once to the clipboard. */
(function () {
  "use strict";

  async function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    // Plain-http fallback (a local install): select a temporary textarea and copy it.
    const area = Voice.el("textarea", { readonly: true, "aria-hidden": "true", style: "position:fixed;opacity:0" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    if (!ok) throw new Error("copy refused");
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-copy-target]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copyTarget);
    const status = button.parentElement.querySelector(".copy-status");
    try {
      await copy(source.textContent.trim());
      if (status) status.textContent = "Copied.";
    } catch (error) {
      // Leave the secret selected so the user can copy it by hand.
      const range = document.createRange();
      range.selectNodeContents(source);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      if (status) status.textContent = "Copy it by hand: it is selected.";
    }
  });
})();
