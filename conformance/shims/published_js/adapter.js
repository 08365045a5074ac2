// The protocol's methods (conformance/PROTOCOL.md §3) on the published Calls SDK, in one
// page. One page is one client: the SDK keeps its state in module-level singletons, so two
// clients in one page would share it. The Python side calls `callsimShim.handle(method,
// params)` and reads `{result}` or `{error: {code, name, message, details}}`; every callback
// goes out through the page binding `callsimEmit(listener, callback, payload)` the moment it
// runs, so the events keep the order the SDK ran them in.
(function () {
  "use strict";
  const Calls = window.CometChatCalls;
  const CALLBACKS = [
    "onUserJoined", "onUserLeft", "onUserListUpdated", "onMediaDeviceListUpdated",
    "onRecordingStarted", "onRecordingStopped", "onScreenShareStarted", "onScreenShareStopped",
    "onUserMuted", "onUserUnMuted", "onCallSwitchedToVideo", "onCallEnded", "onSessionTimeout",
    "onCallEndButtonPressed", "onError",
  ];
  const GETTERS = [
    "isDefaultLayoutEnabled", "isAudioOnlyCall", "getMode", "isEndCallButtonEnabled",
    "isMuteAudioButtonEnabled", "isPauseVideoButtonEnabled", "isScreenShareButtonEnabled",
    "isModeButtonEnabled", "getStartWithAudioMuted", "getStartWithVideoMuted",
    "isAudioToVideoButtonEnabled", "getIdleTimeoutPeriod", "isRecordingButtonEnabled",
    "shouldStartRecordingOnCallStart",
  ];

  // What the SDK hands a callback, as JSON: functions and DOM nodes dropped, cycles cut.
  function plain(value) {
    if (value === undefined) return null;
    const seen = new WeakSet();
    try {
      return JSON.parse(JSON.stringify(value, (key, v) => {
        if (typeof v === "function" || (typeof Node !== "undefined" && v instanceof Node)) return undefined;
        if (v !== null && typeof v === "object") {
          if (seen.has(v)) return undefined;
          seen.add(v);
        }
        return v;
      }));
    } catch (e) {
      return String(value);
    }
  }

  // A thrown or rejected value as the protocol's error. The SDK's own exceptions carry a
  // string `code`; anything else (a TypeError from inside the SDK) is reported by its class
  // name with `details.nonContract`, so a check sees the SDK's real behaviour.
  function failure(e) {
    if (e && typeof e === "object" && typeof e.code === "string") {
      return { code: e.code, name: e.name === undefined ? null : e.name, message: String(e.message),
               details: e.details === undefined ? null : plain(e.details) };
    }
    const name = (e && e.name) || typeof e;
    return { code: name, name: null, message: String((e && e.message) || e),
             details: { nonContract: true } };
  }

  const state = { joinError: null, ended: false, uid: null };

  function emit(listener, callback, payload) {
    window.callsimEmit(listener, callback, plain(payload));
  }

  function recordingListener(listenerId, options, record) {
    const throws = new Set(options.throws || []);
    const actions = options.onCallback || {};
    const spec = {};
    for (const callback of CALLBACKS) {
      spec[callback] = function (...args) {
        if (callback === "onError") state.joinError = failure(args[0]);
        if (callback === "onCallEnded") state.ended = true;
        // The settings listener runs last: once it has a list naming this user, the SDK has
        // finished the callbacks of its own join (waitJoined waits for that).
        if (callback === "onUserListUpdated" && listenerId === "settings" && Array.isArray(args[0])
            && state.uid !== null && args[0].some((user) => user && user.uid === state.uid)) {
          window.callsimListed();
        }
        if (record) emit(listenerId, callback, args.length ? args[0] : null);
        for (const action of actions[callback] || []) {
          if (action.add !== undefined) {
            Calls.addCallEventListener(action.add, recordingListener(String(action.add), {}, true));
          }
          if (action.remove !== undefined) Calls.removeCallEventListener(action.remove);
          if (action.endSession) Calls.endSession();
        }
        if (throws.has(callback)) throw new Error(`listener ${listenerId} throws in ${callback} (as the check asked)`);
      };
    }
    return new Calls.OngoingCallListener(spec);
  }

  function container(calls) {
    const setting = new Calls.MainVideoContainerSetting();
    for (const [setter, ...args] of calls || []) setting[setter](...args);
    return setting;
  }

  // PROTOCOL.md §3.4: keys are builder methods applied in order; two are special. The
  // settings listener is always installed (silent when the check asked for none), so the
  // shim learns of a failed join (onError) whatever the check registered.
  function buildSettings(spec) {
    if (spec === null || typeof spec !== "object" || Array.isArray(spec)) return spec;
    const builder = new Calls.CallSettingsBuilder();
    let listener = recordingListener("settings", {}, false);
    for (const [method, value] of Object.entries(spec)) {
      if (method === "setCallListener") {
        if (value !== false) listener = recordingListener("settings", typeof value === "object" && value ? value : {}, true);
      } else if (method === "setMainVideoContainerSetting") {
        builder.setMainVideoContainerSetting(container(value));
      } else {
        builder[method](value);
      }
    }
    builder.setCallListener(listener);
    return builder.build();
  }

  function describeSettings(calls) {
    const builder = new Calls.CallSettingsBuilder();
    let chained = true;
    for (const [method, value] of Object.entries(calls || {})) {
      chained = chained && builder[method](value) === builder;
    }
    const settings = builder.build();
    const getters = {};
    for (const getter of GETTERS) getters[getter] = plain(settings[getter]());
    getters.getMainVideoContainerSetting = plain(settings.getMainVideoContainerSetting());
    getters.getCallListener = plain(settings.getCallListener());
    return { chained, getters };
  }

  const ARGUMENTS = {
    init: ["appSettings"], generateToken: ["sessionId", "authToken"], muteAudio: ["mute"],
    pauseVideo: ["pause"], setMode: ["mode"], setAudioInputDevice: ["deviceId"],
    setAudioOutputDevice: ["deviceId"], setVideoInputDevice: ["deviceId"],
  };

  async function calls(name, params) {
    switch (name) {
      case "CallSettingsBuilder":
        return describeSettings(params.calls);
      case "MainVideoContainerSetting":
        return plain(container(params.calls));
      case "init": {
        const spec = params.appSettings;
        let settings = spec;
        if (spec !== null && typeof spec === "object" && !Array.isArray(spec)) {
          const builder = new Calls.CallAppSettingsBuilder().setAppId(spec.appId).setRegion(spec.region);
          settings = builder.setHost(spec.host === undefined ? location.origin + "/" : spec.host).build();
        }
        await Calls.init(settings);
        return null;
      }
      case "startSession": {
        const settings = buildSettings("callSettings" in params ? params.callSettings : { setCallListener: true });
        state.joinError = null;
        state.ended = false;
        state.uid = typeof params.selfUid === "string" ? params.selfUid : null;  // from the token, by the shim
        await Calls.startSession(params.callToken, settings, document.getElementById("call"));
        return null;
      }
      case "addCallEventListener": {
        const id = params.listenerId;
        Calls.addCallEventListener(id, recordingListener(String(id), params, true));
        return null;
      }
      case "removeCallEventListener":
        Calls.removeCallEventListener(params.listenerId);
        return null;
      case "getAudioInputDevices": case "getAudioOutputDevices": case "getVideoInputDevices": {
        const devices = Calls[name]() || [];
        return devices.map((d) => ({ deviceId: d.deviceId, kind: d.kind, label: d.label,
                                     groupId: d.groupId, active: Boolean(d.active) }));
      }
    }
    const method = Calls[name];
    if (typeof method !== "function" || name.startsWith("_")) throw { notImplemented: `CometChatCalls.${name}` };
    const args = (ARGUMENTS[name] || []).filter((key) => key in params).map((key) => params[key]);
    return plain(await method.apply(Calls, args));
  }

  // PROTOCOL.md's callView, read off the SDK's own view in the element startSession got.
  // Selectors are the SDK's data-testid attributes where it sets them; "mode" is a menu in
  // this SDK, not a button, so it is shown but not pressed here.
  const BUTTONS = {
    endCall: '[data-testid="cc-end-call"]',
    muteAudio: '[data-testid="cc-audio"]',
    pauseVideo: '[data-testid="cc-video"]:not(:has([data-testid="cc-video-switch"]))',
    switchToVideo: '[data-testid="cc-video"]:has([data-testid="cc-video-switch"])',
    screenShare: '[data-testid="cc-screen-share"]',
    mode: '[data-testid="cc-setting"]',
  };
  const PROMPT = { stay: ".modal-overlay button.stay-button", leaveNow: ".modal-overlay button.leave-button" };

  function press(button) {
    const selector = BUTTONS[button] || PROMPT[button];
    if (selector === undefined || button === "mode") throw { notImplemented: `Harness.press ${button}` };
    const element = document.getElementById("call").querySelector(selector);
    if (element === null) {
      throw { code: "BUTTON_NOT_SHOWN", name: null, message: `${button} is not shown`, details: null };
    }
    element.click();
    return {};
  }

  function view() {
    const root = document.getElementById("call");
    const find = (selector) => root.querySelector(selector);
    const mode = find('[data-testid="cc-tile-container"]') ? "TILE"
      : find('[data-testid="cc-spotlight-container"]') ? "SPOTLIGHT"
      : find('[data-testid="cc-sidebar-container"]') ? "DEFAULT" : null;
    // The countdown reads "1:00", "59", ... "01"; at zero the prompt says the meeting ended.
    const timer = find(".modal-overlay .timer-text");
    let idle = "off";
    let secondsLeft = null;
    if (timer !== null) {
      idle = "prompt";
      const parts = /^(?:(\d+):)?(\d+)$/.exec(timer.textContent.trim());
      if (parts) secondsLeft = Number(parts[1] || 0) * 60 + Number(parts[2]);
    } else if (find(".modal-overlay .modal-title") !== null) {
      idle = "expired";
    }
    const buttons = {};
    for (const [name, selector] of Object.entries(BUTTONS)) buttons[name] = find(selector) !== null;
    // Tiles carry display names, not uids: not answered (PROTOCOL.md allows null).
    return { mounted: root.childElementCount > 0, mode, idle, secondsLeft, buttons, tiles: null };
  }

  window.callsimShim = {
    async handle(method, params) {
      try {
        if (method === "constants") return { result: { CALL_MODE: plain(Calls.CALL_MODE) } };
        if (method === "press") return { result: press(params.button) };
        if (method === "view") return { result: view() };
        if (method === "joinState") {
          return { result: { error: state.joinError, ended: state.ended } };
        }
        return { result: await calls(method, params) };
      } catch (e) {
        if (e && e.notImplemented) return { notImplemented: e.notImplemented };
        return { error: failure(e) };
      }
    },
  };
})();
