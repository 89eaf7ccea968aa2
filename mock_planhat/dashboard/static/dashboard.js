// Live refresh of the journal: reload the page every 2 s while "live refresh" is ticked.
// Everything else works without JavaScript.
(function () {
  var box = document.querySelector("[data-live]");
  if (!box) return;
  function schedule() {
    if (box.checked) setTimeout(function () { if (box.checked) location.reload(); }, 2000);
  }
  box.addEventListener("change", function () {
    var url = new URL(location.href);
    if (box.checked) url.searchParams.set("live", "1"); else url.searchParams.delete("live");
    history.replaceState(null, "", url);
    schedule();
  });
  schedule();
})();
