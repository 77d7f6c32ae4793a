// recover serve: live parts of a page (server-sent events replace them with the server's
// escaped HTML) and copy buttons. No inline code: the Content-Security-Policy forbids it.
"use strict";
for (const el of document.querySelectorAll("[data-live]")) {
  const source = new EventSource(el.dataset.live);
  source.addEventListener("update", (e) => {
    const open = new Set([...el.querySelectorAll("details[open][data-gate]")].map((d) => d.dataset.gate));
    el.innerHTML = e.data;
    for (const d of el.querySelectorAll("details[data-gate]")) {
      if (open.has(d.dataset.gate)) d.open = true;
    }
    el.dataset.updated = String(Number(el.dataset.updated || "0") + 1);
  });
}
document.addEventListener("click", (e) => {
  const b = e.target.closest("[data-copy]");
  if (!b) return;
  const done = () => { b.textContent = "Copied"; setTimeout(() => { b.textContent = "Copy"; }, 1500); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(b.dataset.copy).then(done, () => { b.textContent = "Select and copy"; });
  } else {
    b.textContent = "Select and copy";
  }
});
