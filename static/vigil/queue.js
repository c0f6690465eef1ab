// The triage queue and the finding page: selection, bulk actions without a page load, undo.
// No inline scripts (the Content-Security-Policy forbids them); without this file every form still works.
(function () {
  "use strict";

  // Fields that only matter for some choices: <label data-show-when="risk_accepted"> next to a status select,
  // <label data-bulk-for="status"> in the bulk form.
  function toggle(select, attribute, value) {
    var form = select.form;
    if (!form) { return; }
    form.querySelectorAll("[" + attribute + "]").forEach(function (el) {
      var wanted = el.getAttribute(attribute).split(" ");
      el.hidden = wanted.indexOf(value) === -1;
    });
  }

  var statusSelect = document.getElementById("status-select");
  if (statusSelect) {
    var onStatus = function () { toggle(statusSelect, "data-show-when", statusSelect.value); };
    statusSelect.addEventListener("change", onStatus);
    onStatus();
  }

  var form = document.getElementById("bulk-form");
  if (!form) { return; }
  var action = document.getElementById("bulk-action");
  var flash = document.getElementById("bulk-flash");
  var selectAll = document.getElementById("select-all");
  var counter = document.getElementById("bulk-selected");
  var rows = function () { return Array.prototype.slice.call(document.querySelectorAll("input.select-row")); };

  function bulkFields() {
    var value = action.value;
    var status = form.querySelector("select[name=status]");
    toggle(action, "data-bulk-for", value === "status" && status.value === "risk_accepted" ? "accept_risk" : value);
  }
  action.addEventListener("change", bulkFields);
  bulkFields();

  function count() {
    var n = rows().filter(function (box) { return box.checked; }).length;
    counter.textContent = String(n);
    if (n > 0) { form.querySelector("input[name=scope][value=selected]").checked = true; }
    return n;
  }
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      rows().forEach(function (box) { box.checked = selectAll.checked; });
      count();
    });
  }
  rows().forEach(function (box) { box.addEventListener("change", count); });
  count();

  function say(text, undoUrl, isError) {
    flash.hidden = false;
    flash.className = "flash" + (isError ? " error" : "");
    flash.textContent = "";
    var span = document.createElement("span");
    span.className = "flash-text";
    span.textContent = text;
    flash.appendChild(span);
    if (undoUrl) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = "Undo";
      button.addEventListener("click", function () { post(undoUrl, new FormData(), true); });
      flash.appendChild(document.createTextNode(" "));
      flash.appendChild(button);
    }
  }

  function csrf() {
    var input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function post(url, data, reload) {
    data.set("csrfmiddlewaretoken", csrf());
    return fetch(url, { method: "POST", body: data, credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (answer) {
        if (!answer.ok) {
          say(answer.body.error ? answer.body.error.message : "The action failed.", "", true);
          return;
        }
        if (reload) { window.location.reload(); return; }
        say(answer.body.message, answer.body.undo_url, false);
        // Instant feedback: the changed rows show their new status and assignee, and fade (the next load
        // shows them in their new place, or not at all when they left the filter).
        var states = answer.body.rows || {};
        (answer.body.changed || []).forEach(function (id) {
          var row = document.querySelector("tr[data-id='" + id + "']");
          if (!row) { return; }
          row.classList.add("done");
          var box = row.querySelector("input.select-row");
          if (box) { box.checked = false; }
          var state = states[String(id)];
          if (!state) { return; }
          var badge = row.querySelector(".col-status .status");
          if (badge) { badge.className = "status st-" + state.status; badge.textContent = state.status.replace(/_/g, " "); }
          var who = row.querySelector(".col-assignee .assignee-name");
          if (who) { who.textContent = state.assignee || "—"; }
        });
        if (selectAll) { selectAll.checked = false; }
        count();
      })
      .catch(function () { say("Vigil could not be reached; nothing was changed.", "", true); });
  }

  form.addEventListener("submit", function (event) {
    // A button with its own route (a ticket of the selection) is an ordinary submit: the page reloads with the result.
    if (event.submitter && event.submitter.hasAttribute("formaction")) { return; }
    event.preventDefault();
    var submitter = event.submitter;
    var data = new FormData(form);
    if (submitter && submitter.name) { data.set(submitter.name, submitter.value); }
    if (submitter && submitter.name === "assign_me" && submitter.value !== "selected") {
      post(form.getAttribute("action"), data, false);  // one row's "assign to me"
      return;
    }
    var all = form.querySelector("input[name=scope][value=all]").checked;
    if (!all && count() === 0) {
      say("Select findings first, or choose “everything matching this filter”.", "", true);
      return;
    }
    if (all) {
      // Everything matching: confirm, then an ordinary submit (the page reloads with the result and an Undo).
      if (window.confirm("Apply this to every finding matching the filter (" + form.getAttribute("data-count") + ")?")) {
        if (submitter && submitter.name) {
          var carried = document.createElement("input");
          carried.type = "hidden"; carried.name = submitter.name; carried.value = submitter.value;
          form.appendChild(carried);
        }
        form.submit();
      }
      return;
    }
    post(form.getAttribute("action"), data, false);
  });
})();
