// The report page's held closures: one box selects or clears every listed finding.
(function () {
  "use strict";
  var all = document.getElementById("held-all");
  if (!all) { return; }
  var boxes = function () { return document.querySelectorAll('#held-findings input[name="finding"]'); };
  all.addEventListener("change", function () {
    boxes().forEach(function (box) { box.checked = all.checked; });
  });
  document.getElementById("held-findings").addEventListener("change", function (event) {
    if (event.target.name !== "finding") { return; }
    var list = Array.prototype.slice.call(boxes());
    all.checked = list.every(function (box) { return box.checked; });
  });
})();
