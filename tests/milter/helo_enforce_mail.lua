-- helo_enforce_mail.lua - with helo.enforce_at = "mail" a bad HELO name is
-- refused at MAIL FROM (every transaction of the session), a good one is
-- not, and the exemptions still apply there.
--
--@conf trusted_networks = [ ];
--@conf helo: { enforce_at = "mail"; };
--@log NOQUEUE: reject: MAIL from client.example.net[192.0.2.1]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;
--@log NOQUEUE: reject: MAIL from client.example.net[192.0.2.1]: 501 5.5.2 <[192.0.2.256]>: Helo command rejected: invalid ip address;
--@nolog reject: RCPT from

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

t.run(function()
	for _, name in ipairs({ "localhost", "a..b.example.net", "[192.0.2.256]" }) do
		local r = t.transaction({ helo = name })
		t.check(r.mail == SMFIR_REPLYCODE, "HELO " .. name .. ": MAIL FROM refused",
			"got " .. t.reply_name(r.mail))
	end

	local r = t.transaction({ helo = "mail.example.net" })
	t.check(r.mail == SMFIR_CONTINUE, "HELO mail.example.net: MAIL FROM continues",
		"got " .. t.reply_name(r.mail))
	t.check(r.rcpt[1] == SMFIR_CONTINUE, "HELO mail.example.net: RCPT TO continues",
		"got " .. t.reply_name(r.rcpt[1]))

	-- A refused MAIL ends the transaction; the next one is refused too.
	local conn = t.session({ helo = "localhost" })
	if conn then
		local m1 = t.mail(conn, "<sender@example.net>")
		t.abort(conn)
		local m2 = t.mail(conn, "<other@example.net>")
		t.check(m1 == SMFIR_REPLYCODE and m2 == SMFIR_REPLYCODE,
			"HELO localhost: MAIL refused in two transactions of one session",
			"got " .. t.reply_name(m1) .. ", " .. t.reply_name(m2))
		t.quit(conn)
	end

	r = t.transaction({ helo = "localhost", mail_macros = { ["{auth_authen}"] = "alice@example.net" } })
	t.check(r.mail == SMFIR_CONTINUE, "HELO localhost, authenticated: MAIL FROM continues",
		"got " .. t.reply_name(r.mail))
	t.check(r.rcpt[1] == SMFIR_CONTINUE, "HELO localhost, authenticated: RCPT TO continues",
		"got " .. t.reply_name(r.rcpt[1]))

	r = t.transaction({ helo = false })
	t.check(r.mail == SMFIR_CONTINUE, "no HELO: MAIL FROM continues", "got " .. t.reply_name(r.mail))
end)
