-- callsim: the call token gates the XMPP door.
--
-- On the VirtualHost, each WebSocket session carries the call token in its URL
-- (`/xmpp-websocket?token=<call token>`, as the published SDK dials it). A session whose
-- token is missing, forged or expired is closed with `not-authorized` as soon as its stream
-- opens. On the MUC component, an occupant may join only the room of its token's session.
-- The focus (an external component) is exempt. Tokens are HS256 JWTs signed with the
-- backend's secret (`callsim_token_secret`); Prosody 0.12's util.jwt verifies them.
--
-- Companions: the published SDK shares a screen from a second connection that carries no
-- token at all (its screen-share component dials without one, as Jitsi's allow_empty_token
-- permits). Such a session may ask the focus for a conference and join a room only while
-- the room is live — at least one occupant holds a token for it — and a room takes no more
-- companions than it has token holders. The session ID is a bearer capability here, as it
-- is for the backend's REST (docs/reliability.md). A token that is present but bad is still
-- refused at once.

local jwt = require "util.jwt";
local http = require "util.http";
local jid = require "util.jid";
local st = require "util.stanza";
local nodeprep = require "util.encodings".stringprep.nodeprep;

local secret = module:get_option_string("callsim_token_secret");
if not secret then
	module:log("error", "callsim_token_secret is not set: every session will be refused");
end

local NO_TOKEN = "no call token in the URL";
local COMPANION_NS = "urn:callsim:companion";

local function check(token)
	if not secret then return nil, "the server has no token secret"; end
	if not token or token == "" then return nil, NO_TOKEN; end
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

-- Whether a token-less companion may enter the MUC room `room_jid`: it is live (a token
-- holder is in it) and has fewer companions than token holders.
local function companion_may_enter(room_jid)
	local muc_host = room_jid and jid.host(room_jid);
	local muc = muc_host and prosody.hosts[muc_host] and prosody.hosts[muc_host].modules.muc;
	local room = muc and muc.get_room_from_jid(jid.bare(room_jid));
	if not room then return false, "no live session in that room (a companion needs one)"; end
	local holders, companions = 0, 0;
	for _, occupant in room:each_occupant() do
		for full_jid in occupant:each_session() do
			local session = prosody.full_sessions[full_jid];
			if session and session.callsim_session_id then holders = holders + 1; end
			if session and session.callsim_companion then companions = companions + 1; end
		end
	end
	if holders == 0 then return false, "no live session in that room (a companion needs one)"; end
	if companions >= holders then return false, "the room takes no more companions"; end
	return true;
end

if module:get_host_type() == "local" then
	module:hook_global("websocket-session", function (event)
		local query = event.request.url and event.request.url.query;
		local params = query and http.formdecode(query) or {};
		local session_id, err = check(type(params) == "table" and params.token or nil);
		local session = event.session;
		if err == NO_TOKEN then
			session.callsim_companion = true;
		else
			session.callsim_session_id, session.callsim_token_error = session_id, err;
		end
	end);

	-- A companion asks the focus for a conference only for a live room.
	module:hook("pre-iq/host", function (event)
		local origin, stanza = event.origin, event.stanza;
		if not origin.callsim_companion then return; end
		local request = stanza:get_child("conference", "http://jitsi.org/protocol/focus");
		if not request then return; end
		local ok, why = companion_may_enter(request.attr.room);
		if not ok then
			origin.send(st.error_reply(stanza, "auth", "not-authorized", why));
			return true;
		end
	end, 100);

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
		-- Whether an occupant is a companion is the gate's word, not the client's: the mark
		-- is taken off every presence and put on a companion's join.
		stanza:remove_children("companion", COMPANION_NS);
		if origin.callsim_companion then
			local ok, why = companion_may_enter(room.jid);
			if not ok then
				origin.send(st.error_reply(stanza, "auth", "not-authorized", why, room.jid));
				return true;
			end
			stanza:tag("companion", { xmlns = COMPANION_NS }):up();
			return;
		end
		if not wanted then
			origin.send(st.error_reply(stanza, "auth", "not-authorized", origin.callsim_token_error or "no call token", room.jid));
			return true;
		end
		if nodeprep(wanted) ~= node then
			origin.send(st.error_reply(stanza, "auth", "forbidden", "the call token is for another session", room.jid));
			return true;
		end
	end, 100);

	module:hook("muc-occupant-pre-change", function (event)
		event.stanza:remove_children("companion", COMPANION_NS);
	end, 100);
end
