// Coding Agent Appliance web UI: small enhancements on top of htmx. Every page works without it.
(function () {
  "use strict";
  // Keep the live log pinned to the bottom while the reader is there.
  document.addEventListener("htmx:sseBeforeMessage", function (ev) {
    var box = ev.target.closest(".term");
    if (box) { box.dataset.pinned = (box.scrollHeight - box.scrollTop - box.clientHeight < 40) ? "1" : ""; }
  });
  document.addEventListener("htmx:sseMessage", function (ev) {
    var box = ev.target.closest(".term");
    if (box && box.dataset.pinned === "1") { box.scrollTop = box.scrollHeight; }
  });
  // An error answer htmx would not swap: show its text in the flash area.
  document.addEventListener("htmx:responseError", function (ev) {
    var flash = document.getElementById("flash");
    var xhr = ev.detail.xhr;
    if (flash && xhr && !xhr.getResponseHeader("HX-Retarget")) {
      flash.textContent = "The server answered " + xhr.status + ": " + (xhr.responseText || "").replace(/<[^>]*>/g, " ").trim().slice(0, 400);
    }
  });
  document.addEventListener("htmx:sendError", function () {
    var flash = document.getElementById("flash");
    if (flash) { flash.textContent = "The appliance cannot be reached; check the connection and try again."; }
  });
})();
