/* One hosted card field of the sandbox gateway, inside its frame.
   The card number frame also tokenizes: on the parent's request it gathers the values of the
   other frames of the same form, sends them to POST /sandbox-gateway/tokenize and hands the
   parent only the token and the masked card. It sends nothing for a number that is not one of
   the sandbox's test cards. The frames share the merchant page's origin (that is how this
   frame reads the others), so they keep the number from the portal's page scripts by protocol
   only: a script on the page could read these inputs. NMI's real fields are cross-origin. */
(function () {
  "use strict";
  var script = document.currentScript;
  var field = script.getAttribute("data-field");
  var instance = script.getAttribute("data-instance");
  var tokenizationKey = script.getAttribute("data-tokenization-key");
  var testCards = (script.getAttribute("data-test-cards") || "").split(" ");
  var tokenizeUrl = new URL("tokenize", script.src).href;
  var origin = window.location.origin;
  var input = document.getElementById("field");
  var note = document.getElementById("field-message");
  var MESSAGES = {
    ccnumber_missing: "Card number is required",
    ccnumber_invalid: "Card number is invalid",
    ccnumber_not_test: "Use a test card number: this is a test gateway",
    ccexp_missing: "Expiration date is required",
    ccexp_invalid: "Expiration date is invalid",
    ccexp_past: "Card is expired",
    cvv_missing: "CVV is required",
    cvv_invalid: "CVV is invalid"
  };
  var busy = false;

  function post(message) {
    message.instance = instance;
    message.from = field;
    window.parent.postMessage(message, origin);
  }

  function digits(value) { return value.replace(/[\s-]/g, ""); }

  function luhn(number) {
    var total = 0;
    for (var i = 0; i < number.length; i++) {
      var digit = number.charCodeAt(number.length - 1 - i) - 48;
      if (i % 2 === 1) { digit = digit > 4 ? digit * 2 - 9 : digit * 2; }
      total += digit;
    }
    return total % 10 === 0;
  }

  function wellFormed(number) { return /^\d{12,19}$/.test(number) && luhn(number); }

  function checkNumber(value) {
    var number = digits(value);
    if (!number) { return MESSAGES.ccnumber_missing; }
    if (!wellFormed(number)) { return MESSAGES.ccnumber_invalid; }
    if (testCards.indexOf(number) === -1) { return MESSAGES.ccnumber_not_test; }
    return "";
  }

  function checkExpiry(value) {
    var text = value.trim();
    if (!text) { return MESSAGES.ccexp_missing; }
    var found = /^(\d{1,2})\s*[\/-]?\s*(\d{2}|\d{4})$/.exec(text);
    if (!found) { return MESSAGES.ccexp_invalid; }
    var month = parseInt(found[1], 10);
    var year = parseInt(found[2], 10);
    if (year < 100) { year += 2000; }
    if (month < 1 || month > 12) { return MESSAGES.ccexp_invalid; }
    var now = new Date();
    if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
      return MESSAGES.ccexp_past;
    }
    if (year > now.getFullYear() + 20) { return MESSAGES.ccexp_invalid; }
    return "";
  }

  function checkCvv(value, required, amex) {
    var code = value.trim();
    if (!code) { return required ? MESSAGES.cvv_missing : ""; }
    var lengthOk = amex === undefined ? /^\d{3,4}$/.test(code) : (amex ? /^\d{4}$/.test(code) : /^\d{3}$/.test(code));
    return lengthOk ? "" : MESSAGES.cvv_invalid;
  }

  function mark(message) {
    input.setAttribute("aria-invalid", message ? "true" : "false");
    input.classList.toggle("is-valid", !message && input.value.trim() !== "");
    note.textContent = message;
  }

  function report(name, message) {
    post({ type: "collect:validation", field: name, valid: !message, message: message || "Success" });
  }

  function ownCheck(required) {
    if (field === "ccnumber") { return checkNumber(input.value); }
    if (field === "ccexp") { return checkExpiry(input.value); }
    return checkCvv(input.value, required);
  }

  /* What the other frames use: this frame's form instance, name, value and marking. */
  window.collectField = {
    instance: instance,
    name: field,
    value: function () { return input.value; },
    mark: mark
  };

  function siblings(names) {
    var found = {};
    var frames = window.parent.frames;
    for (var i = 0; i < frames.length; i++) {
      var api = null;
      try { api = frames[i].collectField; } catch (error) { api = null; }
      if (api && api.instance === instance && names.indexOf(api.name) !== -1) { found[api.name] = api; }
    }
    return found;
  }

  function settle(apis, errors) {
    Object.keys(apis).forEach(function (name) {
      var message = errors[name] || "";
      apis[name].mark(message);
      report(name, message);
    });
  }

  function tokenize(request) {
    if (busy) { return; }
    var names = Array.isArray(request.fields) ? request.fields : ["ccnumber", "ccexp", "cvv"];
    var apis = siblings(names);
    if (!apis.ccnumber || !apis.ccexp) {
      post({ type: "collect:error", message: "The card fields are not ready yet." });
      return;
    }
    var number = apis.ccnumber.value();
    var cvv = apis.cvv ? apis.cvv.value() : null;
    var errors = {};
    var numberError = checkNumber(number);
    var expiryError = checkExpiry(apis.ccexp.value());
    var brandIsAmex = wellFormed(digits(number)) ? /^3[47]/.test(digits(number)) : undefined;
    var cvvError = apis.cvv ? checkCvv(cvv, request.cvvRequired === true, brandIsAmex) : "";
    if (numberError) { errors.ccnumber = numberError; }
    if (expiryError) { errors.ccexp = expiryError; }
    if (cvvError) { errors.cvv = cvvError; }
    if (Object.keys(errors).length) {
      settle(apis, errors);
      post({ type: "collect:invalid" });
      return;
    }
    busy = true;
    fetch(tokenizeUrl, {
      method: "POST",
      credentials: "same-origin",
      cache: "no-store",
      headers: { "content-type": "application/json", "accept": "application/json" },
      body: JSON.stringify({
        tokenization_key: tokenizationKey,
        ccnumber: number,
        ccexp: apis.ccexp.value(),
        cvv: cvv,
        cvv_required: request.cvvRequired === true
      })
    }).then(function (response) {
      return response.json().then(function (body) { return { status: response.status, body: body }; });
    }).then(function (result) {
      busy = false;
      if (result.status === 200 && result.body && result.body.token) {
        settle(apis, {});
        post({ type: "collect:token", response: result.body });
      } else if (result.status === 422 && result.body && result.body.errors) {
        settle(apis, result.body.errors);
        post({ type: "collect:invalid" });
      } else {
        post({ type: "collect:error", message: (result.body && result.body.detail) || "Tokenization failed." });
      }
    }, function () {
      busy = false;
      post({ type: "collect:error", message: "The sandbox gateway could not be reached." });
    });
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== window.parent) { return; }
    var data = event.data;
    if (!data || typeof data !== "object" || data.instance !== instance) { return; }
    if (data.type === "collect:tokenize" && field === "ccnumber") { tokenize(data); }
    if (data.type === "collect:clear") { input.value = ""; mark(""); input.removeAttribute("aria-invalid"); }
  });

  var touched = false;
  input.addEventListener("blur", function () {
    if (!touched && input.value === "") { return; }
    touched = true;
    var message = ownCheck(false);
    mark(message);
    report(field, message);
  });
  input.addEventListener("input", function () {
    if (input.getAttribute("aria-invalid") === "true" && !ownCheck(false)) {
      mark("");
      report(field, "");
    }
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      post({ type: "collect:submit" });
    }
  });

  function sendSize() {
    post({ type: "collect:resize", height: Math.ceil(document.documentElement.getBoundingClientRect().height) });
  }
  if (window.ResizeObserver) { new window.ResizeObserver(sendSize).observe(document.documentElement); }
  sendSize();
  post({ type: "collect:ready" });
})();
