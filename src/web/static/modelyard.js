// Progressive enhancements only: every page works without this file.
"use strict";

// Copy buttons: "Copied" for a moment, then their own label again (however often clicked).
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const text = button.getAttribute("data-copy");
  if (!button.dataset.label) button.dataset.label = button.textContent;
  const done = () => {
    button.textContent = "Copied";
    clearTimeout(button._reset);
    button._reset = setTimeout(() => { button.textContent = button.dataset.label; }, 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, done);
  } else {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    done();
  }
});

// "Back" on error pages goes back when there is somewhere to go back to.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-back]");
  if (link && window.history.length > 1) {
    event.preventDefault();
    window.history.back();
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});

// Show the chosen files' names and sizes next to the upload field.
document.addEventListener("change", (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || input.type !== "file") return;
  const out = document.querySelector(`[data-file-for="${input.id}"]`);
  if (!out) return;
  const files = Array.from(input.files || []);
  out.textContent = files.map((f) => `${f.name} · ${(f.size / 1048576).toFixed(1)} MiB`).join(", ");
});

// Upload forms with a progress bar: the same multipart POST, sent with XMLHttpRequest so that
// the bar follows the bytes; then the page the server answered with.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-progress]");
  if (!form || event.defaultPrevented || !window.FormData) return;
  const bar = document.getElementById(form.getAttribute("data-progress"));
  if (!bar) return;
  event.preventDefault();
  const status = form.querySelector("#upload-status");
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  bar.hidden = false;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", form.action);
  xhr.upload.addEventListener("progress", (e) => {
    if (!e.lengthComputable) return;
    const percent = Math.round((e.loaded / e.total) * 100);
    bar.value = percent;
    if (status) status.textContent = `${percent}% · ${(e.loaded / 1048576).toFixed(1)} of ${(e.total / 1048576).toFixed(1)} MiB`;
  });
  xhr.addEventListener("load", () => {
    if (xhr.status < 400) {
      window.location.assign(xhr.responseURL || window.location.href);
      return;
    }
    const page = new DOMParser().parseFromString(xhr.responseText, "text/html");
    const problem = page.querySelector(".alert.error, .error-page p");
    if (status) status.textContent = problem ? problem.textContent : `Upload failed (${xhr.status}).`;
    if (button) button.disabled = false;
  });
  xhr.addEventListener("error", () => {
    if (status) status.textContent = "The upload was interrupted.";
    if (button) button.disabled = false;
  });
  xhr.send(new FormData(form));
});
