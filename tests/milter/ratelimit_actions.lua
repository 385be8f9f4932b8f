-- ratelimit_actions.lua - the four rate-limit actions with the in-process
-- store: tempfail (450 4.7.1) and reject (550 5.7.1) refuse MAIL FROM once
-- the limit is reached; hold quarantines and warn adds X-Mxgate-Warning at
-- end of message, the message going through.  A refused MAIL is not
-- counted, an aborted transaction gives its message back.  Reply texts
-- are checked in the log (miltertest cannot see them).
--
--@conf trusted_networks = [ ];
--@conf quota: { enabled = false; };
--@conf ratelimit: { rules = ( { name = "tf"; key = [ "sender" ]; count = "messages"; classes = ( { match = "tf-*"; limits = [ "2/1h" ]; }, { match = "*"; limits = [ ]; } ); }, { name = "rej"; key = [ "sender" ]; count = "messages"; action = "reject"; classes = ( { match = "rej-*"; limits = [ "1/1h" ]; }, { match = "*"; limits = [ ]; } ); }, { name = "hold"; key = [ "sender" ]; count = "messages"; action = "hold"; classes = ( { match = "hold-*"; limits = [ "1/1h" ]; }, { match = "*"; limits = [ ]; } ); }, { name = "warn"; key = [ "sender" ]; count = "messages"; action = "warn"; classes = ( { match = "warn-*"; limits = [ "1/1h" ]; }, { match = "*"; limits = [ ]; } ); } ); };
--@log NOQUEUE: reject: MAIL from client.example.net[192.0.2.1]: 450 4.7.1 <tf-1@example.net>: Rate limit "tf" exceeded, try again later; from=<tf-1@example.net>
--@log NOQUEUE: reject: MAIL from client.example.net[192.0.2.1]: 550 5.7.1 <rej-1@example.net>: Rate limit "rej" exceeded, try again later;
--@log NOQUEUE: hold: MAIL from client.example.net[192.0.2.1]: rate limit "hold" exceeded for hold-1@example.net;
--@log NOQUEUE: warn: MAIL from client.example.net[192.0.2.1]: rate limit "warn" exceeded for warn-1@example.net;

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

-- One message from sender: MAIL, RCPT, DATA (and EOM when DATA continues).
-- Returns the MAIL reply and the connection, still open at end of message.
local function message(conn, sender)
	local m = t.mail(conn, sender)
	if m ~= SMFIR_CONTINUE then
		t.abort(conn)
		return m
	end
	local r = t.rcpt(conn, "<rcpt@example.org>")
	t.check(r == SMFIR_CONTINUE, sender .. ": RCPT continues", "got " .. t.reply_name(r))
	local d = t.data(conn)
	if d == SMFIR_CONTINUE then
		mt.eom(conn)
		local e = mt.getreply(conn)
		t.check(e == SMFIR_CONTINUE or e == SMFIR_ACCEPT, sender .. ": message accepted at EOM",
			"got " .. t.reply_name(e))
	else
		t.check(d == SMFIR_ACCEPT, sender .. ": message accepted at DATA", "got " .. t.reply_name(d))
	end
	return m
end

t.run(function()
	local conn = t.session()
	if conn == nil then
		return
	end
	-- tempfail: 2 per hour; the refused third is not counted, so it stays refused.
	t.check(message(conn, "<tf-1@example.net>") == SMFIR_CONTINUE, "tempfail: 1st message admitted")
	-- An aborted transaction gives its message back: still room for one.
	t.check(t.mail(conn, "<tf-1@example.net>") == SMFIR_CONTINUE, "tempfail: MAIL of an aborted transaction")
	t.abort(conn)
	t.check(message(conn, "<tf-1@example.net>") == SMFIR_CONTINUE, "tempfail: 2nd message admitted (abort gave back)")
	for i = 3, 4 do
		local m = message(conn, "<tf-1@example.net>")
		t.check(m == SMFIR_REPLYCODE, "tempfail: message " .. i .. " refused with a reply code",
			"got " .. t.reply_name(m))
	end
	-- Other senders are not counted by it.
	t.check(message(conn, "<tf-2@example.net>") == SMFIR_CONTINUE, "tempfail: another sender admitted")

	-- reject: 1 per hour.
	t.check(message(conn, "<rej-1@example.net>") == SMFIR_CONTINUE, "reject: 1st message admitted")
	local m = message(conn, "<rej-1@example.net>")
	t.check(m == SMFIR_REPLYCODE, "reject: 2nd message refused with a reply code", "got " .. t.reply_name(m))

	-- hold: the 2nd message goes through and is quarantined at end of message.
	t.check(message(conn, "<hold-1@example.net>") == SMFIR_CONTINUE, "hold: 1st message admitted")
	t.check(message(conn, "<hold-1@example.net>") == SMFIR_CONTINUE, "hold: 2nd message admitted at MAIL")
	t.check(mt.eom_check(conn, MT_QUARANTINE), "hold: 2nd message quarantined at end of message")

	-- warn: the 2nd message goes through with X-Mxgate-Warning added.
	t.check(message(conn, "<warn-1@example.net>") == SMFIR_CONTINUE, "warn: 1st message admitted")
	t.check(message(conn, "<warn-1@example.net>") == SMFIR_CONTINUE, "warn: 2nd message admitted at MAIL")
	t.check(mt.eom_check(conn, MT_HDRADD, "X-Mxgate-Warning",
			     'rate limit "warn" exceeded for warn-1@example.net'),
		"warn: X-Mxgate-Warning added at end of message")
	t.quit(conn)
end)
