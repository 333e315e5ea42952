// Date range filters: an empty "From" or "Until" box is left out of the submitted
// address, so a one-sided range reads ?created_at__gte=2025-01-01 (the server also
// ignores empty values).
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.classList.contains("portal-range")) return;
  for (const input of form.querySelectorAll("input[type=date]")) {
    if (!input.value) input.disabled = true;
  }
});
// Coming back through the history shows the boxes enabled again.
window.addEventListener("pageshow", () => {
  for (const input of document.querySelectorAll("form.portal-range input[type=date]")) {
    input.disabled = false;
  }
});
