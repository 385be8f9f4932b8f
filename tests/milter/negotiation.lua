-- negotiation.lua - what mxgate asks of the MTA: no headers, end of
-- headers, body or unknown commands, and no reply at connect and HELO (it
-- decides there but speaks at MAIL/RCPT, which it does not skip); of the
-- actions only adding headers and quarantine (and the macro list).  At
-- DATA, with nothing left to decide, the message is accepted.  An MTA that
-- offers no "no reply" steps gets a reply at connect and HELO.
--
--@conf trusted_networks = [ ];

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

-- A function (conn, NAME, want) checking that test (mt.test_option or
-- mt.test_action, called test_name) says want for the flag named NAME; the
-- point is named yes .. NAME or no .. NAME.
local function prober(test, test_name, yes, no)
	return function(conn, name, want)
		local v = _G[name]
		if v == nil then
			t.diag("miltertest does not know " .. name)
			return
		end
		local got = test(conn, v)
		t.check(got == want, (want and yes or no) .. name, test_name .. " gave " .. tostring(got))
	end
end

local opt = prober(mt.test_option, "test_option", "requests ", "does not request ")
local act = prober(mt.test_action, "test_action", "asks for action ", "does not ask for action ")

-- Everything but SMFIP_NR_CONN and SMFIP_NR_HELO, given as both protocol
-- steps and actions: miltertest 2.11 reads mt.negotiate's 3rd argument as
-- the steps, its manual says the actions; this value suits both (its low 9
-- bits, every action, are set).
local NO_NR = 0x1FFFFF & ~(SMFIP_NR_CONN | SMFIP_NR_HELO)

t.run(function()
	local conn = t.connect()
	if conn == nil then return end
	-- Negotiation happens with the first step.
	local err = mt.conninfo(conn, "client.example.net", "192.0.2.1")
	t.check(err == nil, "connect information sent", tostring(err))
	for _, n in ipairs({ "SMFIP_NR_CONN", "SMFIP_NR_HELO", "SMFIP_NOHDRS", "SMFIP_NOEOH",
			     "SMFIP_NOBODY", "SMFIP_NOUNKNOWN" }) do
		opt(conn, n, true)
	end
	for _, n in ipairs({ "SMFIP_NOCONNECT", "SMFIP_NOHELO", "SMFIP_NOMAIL", "SMFIP_NORCPT",
			     "SMFIP_NODATA", "SMFIP_NR_MAIL", "SMFIP_NR_RCPT", "SMFIP_NR_DATA" }) do
		opt(conn, n, false)
	end
	act(conn, "SMFIF_ADDHDRS", true)
	act(conn, "SMFIF_QUARANTINE", true)
	for _, n in ipairs({ "SMFIF_CHGBODY", "SMFIF_ADDRCPT", "SMFIF_DELRCPT", "SMFIF_CHGHDRS",
			     "SMFIF_CHGFROM" }) do
		act(conn, n, false)
	end

	if t.helo(conn, "mail.example.net") then
		local m = t.mail(conn, "<sender@example.net>")
		t.check(m == SMFIR_CONTINUE, "MAIL FROM gets SMFIR_CONTINUE", "got " .. t.reply_name(m))
		local r = t.rcpt(conn, "<rcpt@example.org>")
		t.check(r == SMFIR_CONTINUE, "RCPT TO gets SMFIR_CONTINUE", "got " .. t.reply_name(r))
		local d = t.data(conn)
		t.check(d == SMFIR_ACCEPT, "DATA gets SMFIR_ACCEPT (nothing left to decide)",
			"got " .. t.reply_name(d))
		-- The next transaction of the session starts afresh.
		t.abort(conn)
		m = t.mail(conn, "<sender@example.net>")
		r = t.rcpt(conn, "<rcpt@example.org>")
		d = t.data(conn)
		t.check(m == SMFIR_CONTINUE and r == SMFIR_CONTINUE and d == SMFIR_ACCEPT,
			"second transaction: MAIL, RCPT continue, DATA accepted",
			"got " .. t.reply_name(m) .. ", " .. t.reply_name(r) .. ", " .. t.reply_name(d))
	end
	t.quit(conn)

	-- An MTA that offers no SMFIP_NR_CONN / SMFIP_NR_HELO.
	conn = t.connect(6, NO_NR, NO_NR)
	if conn == nil then return end
	opt(conn, "SMFIP_NR_CONN", false)
	opt(conn, "SMFIP_NR_HELO", false)
	opt(conn, "SMFIP_NOHDRS", true)
	-- miltertest waits for a reply here; none would be a read timeout.
	err = mt.conninfo(conn, "client.example.net", "192.0.2.1")
	t.check(err == nil and mt.getreply(conn) == SMFIR_CONTINUE,
		"without NR_CONN offered: connect gets SMFIR_CONTINUE",
		tostring(err) .. ", " .. t.reply_name(mt.getreply(conn)))
	err = mt.helo(conn, "localhost")
	t.check(err == nil and mt.getreply(conn) == SMFIR_CONTINUE,
		"without NR_HELO offered: HELO localhost gets SMFIR_CONTINUE (refused later)",
		tostring(err) .. ", " .. t.reply_name(mt.getreply(conn)))
	local m = t.mail(conn, "<sender@example.net>")
	local r = t.rcpt(conn, "<rcpt@example.org>")
	t.check(m == SMFIR_CONTINUE and r == SMFIR_REPLYCODE,
		"without NR offered: HELO localhost still refused at RCPT",
		"got " .. t.reply_name(m) .. ", " .. t.reply_name(r))
	t.quit(conn)
end)
