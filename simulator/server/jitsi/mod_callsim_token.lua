-- callsim: the call token gates the XMPP door.
--
-- On the VirtualHost, each WebSocket session carries the call token in its URL
-- (`/xmpp-websocket?token=<call token>`, as the published SDK dials it). A session whose
-- token is missing, forged or expired is closed with `not-authorized` as soon as its stream
-- opens. On the MUC component, an occupant may join only the room of its token's session.
-- The focus (an external component) is exempt. Tokens are HS256 JWTs signed with the
-- backend's secret (`callsim_token_secret`); Prosody 0.12's util.jwt verifies them.

local jwt = require "util.jwt";
local http = require "util.http";
local jid = require "util.jid";
local st = require "util.stanza";
local nodeprep = require "util.encodings".stringprep.nodeprep;

local secret = module:get_option_string("callsim_token_secret");
if not secret then
	module:log("error", "callsim_token_secret is not set: every session will be refused");
end

local function check(token)
	if not secret then return nil, "the server has no token secret"; end
	if not token or token == "" then return nil, "no call token in the URL"; end
	local ok, payload = jwt.verify(secret, token);
	if not ok then return nil, "call token refused: " .. tostring(payload); end
	local data = type(payload) == "table" and payload.data;
	if type(data) ~= "table" or type(data.sessionId) ~= "string" then
		return nil, "call token carries no session";
	end
	if type(payload.exp) ~= "number" or payload.exp <= os.time() then
		return nil, "call token expired";
	end
	return data.sessionId;
end

if module:get_host_type() == "local" then
	module:hook_global("websocket-session", function (event)
		local query = event.request.url and event.request.url.query;
		local params = query and http.formdecode(query) or {};
		local session_id, err = check(type(params) == "table" and params.token or nil);
		local session = event.session;
		session.callsim_session_id, session.callsim_token_error = session_id, err;
	end);

	module:hook("stream-features", function (event)
		local origin = event.origin;
		if origin.callsim_token_error then
			module:log("info", "refusing %s: %s", origin.id or "?", origin.callsim_token_error);
			origin:close({ condition = "not-authorized", text = origin.callsim_token_error });
			return true;
		end
	end, 1000);
else
	module:hook("muc-occupant-pre-join", function (event)
		local origin, room, stanza = event.origin, event.room, event.stanza;
		if origin.type == "component" then return; end
		local wanted = origin.callsim_session_id;
		local node = jid.node(room.jid);
		if not wanted then
			origin.send(st.error_reply(stanza, "auth", "not-authorized", origin.callsim_token_error or "no call token", room.jid));
			return true;
		end
		if nodeprep(wanted) ~= node then
			origin.send(st.error_reply(stanza, "auth", "forbidden", "the call token is for another session", room.jid));
			return true;
		end
	end, 100);
end
