/* The pay pages. An error after a refused payment takes the focus, so it is read out first. A pay
   button is disabled once pressed (the pay key makes a second press harmless anyway). The new-card
   form: the gateway's hosted fields turn the card into a single-use payment token. */
(function () {
  "use strict";
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }
  var payForm = document.getElementById("pay-form");
  if (payForm) {
    payForm.addEventListener("submit", function (event) {
      var button = document.getElementById("pay-submit");
      if (button.getAttribute("aria-disabled") === "true") { event.preventDefault(); return; }
      button.setAttribute("aria-disabled", "true");
      document.getElementById("pay-status").textContent = payForm.getAttribute("data-text-paying") || "Paying…";
    });
  }
  var form = document.getElementById("card-form");
  if (!form) { return; }
  /* Words in the page's language, from the form's data-text-* attributes (English if absent). */
  function words(name, english) { return form.getAttribute("data-text-" + name) || english; }
  var submit = document.getElementById("card-form-submit");
  var status = document.getElementById("card-form-status");
  /* The hosted inputs follow the page's colour scheme; the focus ring is the merchant's brand
     colour adjusted to read on that scheme's background (data-brand-text / data-brand-text-dark). */
  var dark = Boolean(window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches);
  var brand = form.getAttribute(dark ? "data-brand-text-dark" : "data-brand-text") ||
    form.getAttribute("data-brand-color") || "#2f5bea";
  var scheme = dark
    ? { surface: "#1c212b", ink: "#e6e9ef", line: "#8690a2", muted: "#a7b0c0", danger: "#ff8a80" }
    : { surface: "#ffffff", ink: "#1a1f36", line: "#7a8495", muted: "#596171", danger: "#b42318" };
  var fieldIds = { ccnumber: "card-number", ccexp: "card-expiry", cvv: "card-cvv" };

  function say(text) { status.textContent = text; }

  function showFieldError(field, message) {
    var box = document.getElementById(fieldIds[field] + "-error");
    if (!box) { return; }
    box.textContent = message || "";
    box.hidden = !message;
  }

  if (!window.CollectJS) {
    say(words("unavailable", "The secure card form could not load. Please reload the page or try again later."));
    submit.disabled = true;
    return;
  }

  submit.disabled = true;
  window.CollectJS.configure({
    variant: "inline",
    styleSniffer: false,
    customCss: {
      "background-color": scheme.surface, "color": scheme.ink, "border-color": scheme.line,
      "border-radius": "6px", "font-size": "16px", "padding": "8px 12px"
    },
    focusCss: { "border-color": brand, "outline": "2px solid " + brand, "outline-offset": "1px" },
    invalidCss: { "border-color": scheme.danger },
    placeholderCss: { "color": scheme.muted },
    fields: {
      ccnumber: { selector: "#card-number", title: words("number", "Card number"), placeholder: "1234 1234 1234 1234" },
      ccexp: { selector: "#card-expiry", title: words("expiry", "Expiry date (MM / YY)"),
        placeholder: words("expiry-placeholder", "MM / YY") },
      cvv: { display: "show", selector: "#card-cvv", title: words("cvv", "Security code"), placeholder: "CVC" }
    },
    fieldsAvailableCallback: function () { submit.disabled = false; },
    validationCallback: function (field, valid, message) {
      showFieldError(field, valid ? "" : message);
      if (!valid) { submit.disabled = false; say(""); }
    },
    timeoutDuration: 20000,
    timeoutCallback: function () {
      submit.disabled = false;
      say(words("timeout", "The card processor did not answer in time. Please try again."));
    },
    callback: function (response) {
      form.elements.payment_token.value = response.token;
      say(words("paying", "Paying…"));
      form.submit();
    }
  });

  form.addEventListener("submit", function (event) {
    if (form.elements.payment_token.value) { return; }
    event.preventDefault();
    submit.disabled = true;
    say(words("checking", "Checking your card…"));
    window.CollectJS.startPaymentRequest();
  });
})();
