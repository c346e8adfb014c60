/* The sandbox gateway's Collect.js: NMI's inline hosted-fields API, served by the portal.
   CollectJS.configure(config) puts a frame with one card input into each field's element;
   CollectJS.startPaymentRequest() asks the card number frame to tokenize, and config.callback
   receives the single-use token and the masked card, never the number. That is the protocol,
   not a browser boundary: the frames are served from the merchant's own host, the same origin
   as this page, so a script on the page could read their inputs. NMI's real fields are on
   NMI's origin, out of the page's reach. */
(function () {
  "use strict";
  if (window.CollectJS) { return; }
  var script = document.currentScript;
  var scriptUrl = new URL(script ? script.src : "/sandbox-gateway/collect.js", window.location.href);
  var origin = scriptUrl.origin;
  var tokenizationKey = script ? script.getAttribute("data-tokenization-key") : null;
  var variant = script ? script.getAttribute("data-variant") : null;
  var FIELDS = ["ccnumber", "ccexp", "cvv"];
  var DEFAULTS = {
    ccnumber: { selector: "#ccnumber", title: "Card number", placeholder: "0000 0000 0000 0000" },
    ccexp: { selector: "#ccexp", title: "Expiration date", placeholder: "MM / YY" },
    cvv: { selector: "#cvv", title: "Security code", placeholder: "CVV" }
  };
  var STYLE_OPTIONS = {
    customCss: "custom", focusCss: "focus", invalidCss: "invalid", validCss: "valid", placeholderCss: "placeholder"
  };
  var state = null;

  function randomId() {
    var bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function call(name) {
    var fn = state && state.config[name];
    if (typeof fn === "function") { fn.apply(null, Array.prototype.slice.call(arguments, 1)); }
  }

  function teardown() {
    if (!state) { return; }
    Object.keys(state.frames).forEach(function (name) {
      var frame = state.frames[name];
      if (frame.parentNode) { frame.parentNode.removeChild(frame); }
    });
    if (state.clickHandler) { document.removeEventListener("click", state.clickHandler, true); }
    if (state.timer) { window.clearTimeout(state.timer); }
    state = null;
  }

  function fieldList(config) {
    var given = config.fields || {};
    var list = [];
    FIELDS.forEach(function (name) {
      var options = given[name] || {};
      var selector = options.selector || DEFAULTS[name].selector;
      if (name === "cvv" && options.display === "hide") { return; }
      var holder = document.querySelector(selector);
      if (!holder) {
        if (name === "cvv") { return; }
        throw new Error("CollectJS: no element matches the " + name + " selector " + selector);
      }
      list.push({
        name: name,
        holder: holder,
        title: options.title || DEFAULTS[name].title,
        placeholder: options.placeholder === undefined ? DEFAULTS[name].placeholder : String(options.placeholder)
      });
    });
    return list;
  }

  function styles(config) {
    var found = {};
    Object.keys(STYLE_OPTIONS).forEach(function (option) {
      if (config[option] && typeof config[option] === "object") { found[STYLE_OPTIONS[option]] = config[option]; }
    });
    return JSON.stringify(found);
  }

  function configure(config) {
    if (!tokenizationKey) { throw new Error("CollectJS: the script tag needs a data-tokenization-key attribute"); }
    config = config || {};
    if ((config.variant || variant || "inline") !== "inline") {
      window.console.warn("CollectJS (sandbox): only the inline variant is available; using it");
    }
    var fields = fieldList(config);
    teardown();
    var cvvOptions = (config.fields && config.fields.cvv) || {};
    state = {
      config: config,
      instance: randomId(),
      frames: {},
      ready: {},
      available: false,
      pending: false,
      queued: false,
      timer: null,
      clickHandler: null,
      cvvRequired: cvvOptions.display === "required"
    };
    var css = styles(config);
    fields.forEach(function (field) {
      var url = new URL("fields/" + field.name, scriptUrl);
      url.searchParams.set("key", tokenizationKey);
      url.searchParams.set("instance", state.instance);
      url.searchParams.set("title", field.title);
      url.searchParams.set("placeholder", field.placeholder);
      if (css !== "{}") { url.searchParams.set("css", css); }
      var frame = document.createElement("iframe");
      frame.src = url.href;
      frame.title = field.title;
      frame.setAttribute("data-collect-field", field.name);
      frame.style.display = "block";
      frame.style.width = "100%";
      frame.style.border = "0";
      frame.style.height = "3rem";
      field.holder.textContent = "";
      field.holder.appendChild(frame);
      state.frames[field.name] = frame;
    });
    var paymentSelector = config.paymentSelector || (script && script.getAttribute("data-payment-selector")) || "#payButton";
    state.clickHandler = function (event) {
      var target = event.target;
      if (target && target.closest && target.closest(paymentSelector)) {
        event.preventDefault();
        startPaymentRequest();
      }
    };
    document.addEventListener("click", state.clickHandler, true);
  }

  function sendTokenize() {
    state.queued = false;
    state.frames.ccnumber.contentWindow.postMessage({
      type: "collect:tokenize",
      instance: state.instance,
      fields: Object.keys(state.frames),
      cvvRequired: state.cvvRequired
    }, origin);
  }

  function finish() {
    if (state.timer) { window.clearTimeout(state.timer); }
    state.timer = null;
    state.pending = false;
  }

  function startPaymentRequest() {
    if (!state) { throw new Error("CollectJS: call CollectJS.configure first"); }
    if (state.pending) { return; }
    state.pending = true;
    var timeout = Number(state.config.timeoutDuration);
    if (timeout > 0) {
      state.timer = window.setTimeout(function () {
        finish();
        call("timeoutCallback");
      }, timeout);
    }
    if (state.available) { sendTokenize(); } else { state.queued = true; }
  }

  function clearInputs() {
    if (!state) { return; }
    Object.keys(state.frames).forEach(function (name) {
      state.frames[name].contentWindow.postMessage({ type: "collect:clear", instance: state.instance }, origin);
    });
  }

  function formOf() {
    var frame = state.frames.ccnumber;
    return frame && frame.closest ? frame.closest("form") : null;
  }

  function deliver(response) {
    if (typeof state.config.callback === "function") {
      state.config.callback(response);
      return;
    }
    var form = formOf();
    if (!form) { return; }
    var holder = form.querySelector("input[name='payment_token']");
    if (!holder) {
      holder = document.createElement("input");
      holder.type = "hidden";
      holder.name = "payment_token";
      form.appendChild(holder);
    }
    holder.value = response.token;
    form.submit();
  }

  window.addEventListener("message", function (event) {
    if (!state || event.origin !== origin) { return; }
    var data = event.data;
    if (!data || typeof data !== "object" || data.instance !== state.instance) { return; }
    var sender = state.frames[data.from];
    if (!sender || event.source !== sender.contentWindow) { return; }
    switch (data.type) {
      case "collect:ready":
        state.ready[data.from] = true;
        if (!state.available && Object.keys(state.frames).every(function (name) { return state.ready[name]; })) {
          state.available = true;
          call("fieldsAvailableCallback");
          if (state.queued) { sendTokenize(); }
        }
        break;
      case "collect:resize":
        var height = Number(data.height);
        if (height >= 16 && height <= 400) { sender.style.height = height + "px"; }
        break;
      case "collect:validation":
        if (FIELDS.indexOf(data.field) !== -1) { call("validationCallback", data.field, data.valid === true, String(data.message)); }
        break;
      case "collect:submit":
        var form = formOf();
        if (form && typeof state.config.callback === "function" && typeof form.requestSubmit === "function") {
          form.requestSubmit();
        } else {
          startPaymentRequest();
        }
        break;
      case "collect:token":
        if (data.from !== "ccnumber" || !state.pending) { break; }
        finish();
        deliver(data.response);
        break;
      case "collect:invalid":
        if (data.from === "ccnumber") { finish(); }
        break;
      case "collect:error":
        if (data.from !== "ccnumber") { break; }
        finish();
        window.console.error("CollectJS (sandbox): " + data.message);
        call("timeoutCallback");
        break;
    }
  });

  window.CollectJS = {
    configure: configure,
    startPaymentRequest: startPaymentRequest,
    clearInputs: clearInputs
  };

  document.addEventListener("DOMContentLoaded", function () {
    if (!state && tokenizationKey && document.querySelector(DEFAULTS.ccnumber.selector)) { configure({}); }
  });
})();
