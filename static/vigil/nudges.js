// Nudge cards: "Open the module" is a plain link to the module (new tab); this script also tells
// Vigil the nudge was opened (POST, same origin, CSRF token from the card's forms) and updates
// the card.  Without JavaScript the link still works; "Mark done" records the opening too.
(function () {
  "use strict";
  function csrfToken(card) {
    var input = card.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  document.querySelectorAll("a.nudge-open[data-opened-url]").forEach(function (link) {
    link.addEventListener("click", function () {
      var card = link.closest(".nudge-card");
      if (!card) { return; }
      fetch(link.getAttribute("data-opened-url"), {
        method: "POST",
        credentials: "same-origin",
        keepalive: true,
        headers: { "X-CSRFToken": csrfToken(card), "Accept": "application/json" }
      }).then(function (response) {
        return response.ok ? response.json() : null;
      }).then(function (body) {
        if (!body) { return; }
        var label = card.querySelector(".nudge-state");
        if (label) { label.textContent = body.label; }
        card.className = card.className.replace(/\bst-\w+/, "st-" + body.state);
      }).catch(function () { /* the link still opened; the state catches up on "Mark done" */ });
    });
  });
})();
