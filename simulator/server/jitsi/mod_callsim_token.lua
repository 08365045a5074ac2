-- callsim: the call token gates the XMPP door.
--
-- On the VirtualHost, each WebSocket session carries the call token in its URL
-- (`/xmpp-websocket?token=<call token>`, as the published SDK dials it). A session whose
-- token is missing, forged or expired is closed with `not-authorized` as soon as its stream
-- opens. On the MUC component, an occupant may join only the room of its token's session.
-- The focus (an external component) is exempt. Tokens are HS256 JWTs signed with the
-- backend's secret (`callsim_token_secret`); Prosody 0.12's util.jwt verifies them.
--
-- Screen-share companions: the published SDK shares a screen from a second connection that
-- carries no token at all. Its first stanza of note is its `conference` IQ, which carries the
-- `machine-uid` of the browser it runs in, the same as its owner's (the owner itself sends
-- nothing before it dials). So a token-less session is let in only as the companion of
-- exactly one token holder:
--   * its stream opens only while some token holder could take a companion (one that asked
--     the focus for a conference and has none), else `not-authorized` at the stream;
--   * its conference IQ must name the room of a present token holder with its machine-uid
--     and no companion yet: it is then bound to that holder (one companion each);
--   * it joins only that room, while the holder is in it, marked as the holder's companion;
--     its `SCREEN_SHARING_STARTED` must name the holder, and come within
--     `callsim_companion_deadline` seconds of the join;
--   * it hears only the focus and itself: no other occupant's presence, no message, no IQ
--     from anyone but the focus; it may send only to its room, the focus and the server;
--   * it is closed when its holder leaves the room or disconnects; once it has left the room,
--     its holder is free to share again and it may not come back.
-- Anything else it tries closes its stream with `not-authorized`.

local jwt = require "util.jwt";
local http = require "util.http";
local jid = require "util.jid";
local st = require "util.stanza";
local json = require "util.json";
local filters = require "util.filters";
local nodeprep = require "util.encodings".stringprep.nodeprep;

local secret = module:get_option_string("callsim_token_secret");
if not secret then
	module:log("error", "callsim_token_secret is not set: every session will be refused");
end
local deadline = module:get_option_number("callsim_companion_deadline", 10);

local NO_TOKEN = "no call token in the URL";
local COMPANION_NS = "urn:callsim:companion";
local FOCUS_NS = "http://jitsi.org/protocol/focus";
local FOCUS_NICK = "focus";

local function check(token)
	if not secret then return nil, "the server has no token secret"; end
	if not token or token == "" then return nil, NO_TOKEN; end
	local ok, payload = jwt.verify(secret, token);
	if not ok then return nil, "call token refused: " .. tostring(payload); end
	if type(payload) ~= "table" then return nil, "call token carries no session"; end
	-- A callsim call token names its session in data.sessionId; a Jitsi deployment's JWT
	-- (prosody's token auth, as `callsim run --jwt-secret` signs them) in its room claim.
	local data = payload.data;
	local session_id = type(data) == "table" and data.sessionId or payload.room;
	if type(session_id) ~= "string" or session_id == "" or session_id == "*" then
		return nil, "call token carries no session";
	end
	if type(payload.exp) ~= "number" or payload.exp <= os.time() then
		return nil, "call token expired";
	end
	return session_id;
end

-- A c2s session still bound (not closed).
local function live(session)
	return session ~= nil and session.full_jid ~= nil and prosody.full_sessions[session.full_jid] == session;
end

local function refuse(session, why)
	module:log("info", "closing companion %s: %s", session.full_jid or session.id or "?", why);
	session:close({ condition = "not-authorized", text = why });
end

-- Closing another session is left to the next turn: from inside the MUC's handling of someone
-- else's stanza, the stream error would not reach the client before its connection closes.
local function refuse_later(session, why)
	module:add_timer(0, function ()
		if live(session) then refuse(session, why); end
	end);
end

local function muc_room(room_jid)
	local muc_host = room_jid and jid.host(room_jid);
	local muc = muc_host and prosody.hosts[muc_host] and prosody.hosts[muc_host].modules.muc;
	return muc and muc.get_room_from_jid(jid.bare(room_jid));
end

-- The holder's nick in its room, if it is in it.
local function nick_in_room(holder)
	local room = holder.callsim_room and muc_room(holder.callsim_room);
	local occupant_jid = room and room:get_occupant_jid(holder.full_jid);
	return occupant_jid and jid.resource(occupant_jid);
end

-- Token holders that asked the focus for a conference, by session (weak: a closed session goes).
local holders = setmetatable({}, { __mode = "k" });

-- Holders that could take a companion now: in a room, none bound. `room` and `machine` narrow.
local function open_holders(room, machine)
	local found = {};
	for holder in pairs(holders) do
		if live(holder) and not live(holder.callsim_companion_session)
			and (room == nil or holder.callsim_room == room)
			and (machine == nil or holder.callsim_machine_uid == machine)
			and nick_in_room(holder) then
			found[#found + 1] = holder;
		end
	end
	return found;
end

-- The companion's share names its holder (`{"userId": <holder nick>, ...}`); false if it names another.
local function names_holder(stanza, holder_nick)
	local started = stanza:get_child("SCREEN_SHARING_STARTED");
	if not started then return nil; end
	local value = json.decode(started:get_text() or "");
	local owner = type(value) == "table" and value.userId or started:get_text();
	return owner == holder_nick;
end

-- What a companion hears: its room's focus and itself; the server and the focus component.
local function companion_hears(stanza, session)
	if stanza.name ~= "presence" and stanza.name ~= "message" and stanza.name ~= "iq" then
		return stanza; -- stream-level elements (SASL, features, errors)
	end
	local from = stanza.attr.from;
	local node, host, resource = jid.split(from);
	local room = session.callsim_owner and session.callsim_owner.callsim_room;
	if from == nil or (node == nil and resource == nil) then return stanza; end -- the server
	if stanza.name == "message" then return nil; end
	if room ~= nil and jid.bare(from) == room then
		if resource == nil or resource == FOCUS_NICK or resource == session.callsim_nick then return stanza; end
		return nil;
	end
	if node == nil and host ~= nil then return stanza; end -- a component (the focus's IQ answers)
	return nil;
end

if module:get_host_type() == "local" then
	module:hook_global("websocket-session", function (event)
		local query = event.request.url and event.request.url.query;
		local params = query and http.formdecode(query) or {};
		local session_id, err = check(type(params) == "table" and params.token or nil);
		local session = event.session;
		if err == NO_TOKEN then
			session.callsim_companion = true;
			filters.add_filter(session, "stanzas/out", companion_hears, 1000);
		else
			session.callsim_session_id, session.callsim_token_error = session_id, err;
		end
	end);

	module:hook("stream-features", function (event)
		local origin = event.origin;
		if origin.callsim_token_error then
			module:log("info", "refusing %s: %s", origin.id or "?", origin.callsim_token_error);
			origin:close({ condition = "not-authorized", text = origin.callsim_token_error });
			return true;
		end
		if origin.callsim_companion and not origin.callsim_owner and #open_holders() == 0 then
			origin:close({ condition = "not-authorized", text = NO_TOKEN });
			return true;
		end
	end, 1000);

	-- The conference IQ: a holder's machine-uid and room are noted; a companion is bound.
	module:hook("pre-iq/host", function (event)
		local origin, stanza = event.origin, event.stanza;
		local request = stanza:get_child("conference", FOCUS_NS);
		if not request then return; end
		local room = request.attr.room and jid.bare(request.attr.room):lower();
		local machine = request.attr["machine-uid"];
		if origin.callsim_session_id then
			origin.callsim_room, origin.callsim_machine_uid = room, machine;
			holders[origin] = true;
			return;
		end
		if not origin.callsim_companion then return; end
		local why;
		if origin.callsim_spent then
			why = "a companion shares once: it left";
		elseif origin.callsim_owner then
			if origin.callsim_owner.callsim_room == room then return; end -- asked again (a retry)
			why = "a companion shares into one room only";
		elseif not machine or machine == "" then
			why = "a connection without a call token must carry its owner's machine-uid";
		else
			local found = open_holders(room, machine);
			if #found == 1 then
				origin.callsim_owner, found[1].callsim_companion_session = found[1], origin;
				return;
			end
			why = #found == 0 and "no token holder of that room on this machine is free to share"
				or "more than one token holder could own this share";
		end
		origin.send(st.error_reply(stanza, "auth", "not-authorized", why));
		refuse(origin, why);
		return true;
	end, 100);

	-- A companion sends only to its room, the focus and the server.
	module:hook("pre-stanza", function (event)
		local origin, stanza = event.origin, event.stanza;
		if not origin.callsim_companion then return; end
		local to = stanza.attr.to;
		local node, _, resource = jid.split(to);
		local room = origin.callsim_owner and origin.callsim_owner.callsim_room;
		local allowed;
		if stanza.name == "message" then
			allowed = false;
		elseif to == nil or jid.bare(to) == jid.bare(origin.full_jid or "") then
			allowed = true; -- the server on its own behalf (a first presence goes to no one)
		elseif node == nil then
			allowed = stanza.name == "iq"; -- the server, a component (the conference IQ, disco)
		elseif stanza.name == "presence" then
			allowed = room ~= nil and jid.bare(to):lower() == room;
		else
			allowed = room ~= nil and jid.bare(to):lower() == room and (resource == nil or resource == FOCUS_NICK);
		end
		if not allowed then
			refuse(origin, "a screen-share companion sends to its room's focus only");
			return true;
		end
	end, 100);

	-- A holder that goes takes its companion with it.
	module:hook("resource-unbind", function (event)
		local session = event.session;
		holders[session] = nil;
		local companion = session.callsim_companion_session;
		if live(companion) then refuse_later(companion, "its owner left"); end
		local owner = session.callsim_owner;
		if owner and owner.callsim_companion_session == session then owner.callsim_companion_session = nil; end
	end);
else
	local function mark_and_check_share(origin, stanza, room)
		local owner = origin.callsim_owner;
		local owner_nick = owner and live(owner) and room.jid:lower() == owner.callsim_room and nick_in_room(owner);
		if origin.callsim_spent then
			return "a companion shares once: it left";
		end
		if not owner_nick then
			return "a companion joins only the room its owner is in";
		end
		local named = names_holder(stanza, owner_nick);
		if named == false then
			return "the share names another owner";
		end
		if named then origin.callsim_confirmed = true; end
		stanza:tag("companion", { xmlns = COMPANION_NS, owner = owner_nick }):up();
	end

	module:hook("muc-occupant-pre-join", function (event)
		local origin, room, stanza = event.origin, event.room, event.stanza;
		if origin.type == "component" then return; end
		local wanted = origin.callsim_session_id;
		local node = jid.node(room.jid);
		-- Whether an occupant is a companion is the gate's word, not the client's: the mark
		-- is taken off every presence and put on a companion's join.
		stanza:remove_children("companion", COMPANION_NS);
		if origin.callsim_companion then
			local why = mark_and_check_share(origin, stanza, room);
			if why then
				origin.send(st.error_reply(stanza, "auth", "not-authorized", why, room.jid));
				refuse(origin, why);
				return true;
			end
			origin.callsim_nick = jid.resource(stanza.attr.to);
			module:add_timer(deadline, function ()
				if live(origin) and not origin.callsim_confirmed then
					refuse(origin, "no screen share named its owner in time");
				end
			end);
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
		local origin, stanza = event.origin, event.stanza;
		stanza:remove_children("companion", COMPANION_NS);
		if origin and origin.callsim_companion then
			local why = mark_and_check_share(origin, stanza, event.room);
			if why then
				refuse(origin, why);
				return true;
			end
		end
	end, 100);

	-- A holder that leaves the room takes its companion with it.
	module:hook("muc-occupant-left", function (event)
		local sessions = { event.origin };
		for real_jid in event.occupant:each_session() do
			sessions[#sessions + 1] = prosody.full_sessions[real_jid];
		end
		for _, session in pairs(sessions) do
			local companion = session.callsim_companion_session;
			if live(companion) then refuse_later(companion, "its owner left"); end
			-- A companion that leaves has shared its one share: its holder may share again at
			-- once (the SDK dials its next share while the last one may still be connected).
			local owner = session.callsim_owner;
			if owner and owner.callsim_companion_session == session then owner.callsim_companion_session = nil; end
			if session.callsim_companion then session.callsim_spent = true; end
		end
	end);
end
