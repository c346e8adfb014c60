// Move the keyboard focus to the error summary so screen readers read it first.
(function () {
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }
})();
