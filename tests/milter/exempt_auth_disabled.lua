-- exempt_auth_disabled.lua - with helo.exempt_authenticated = false an
-- authenticated client is held to the HELO check like any other.
--
--@conf trusted_networks = [ ];
--@conf helo: { exempt_authenticated = false; };
--@log reject: RCPT from client.example.net[192.0.2.1]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

t.run(function()
	local r = t.transaction({ helo = "localhost", mail_macros = { ["{auth_authen}"] = "alice@example.net" } })
	t.check(r.mail == SMFIR_CONTINUE, "HELO localhost, authenticated: MAIL FROM continues",
		"got " .. t.reply_name(r.mail))
	t.check(r.rcpt[1] == SMFIR_REPLYCODE, "HELO localhost, authenticated: RCPT TO refused",
		"got " .. t.reply_name(r.rcpt[1]))
	r = t.transaction({ helo = "mail.example.net", mail_macros = { ["{auth_authen}"] = "alice@example.net" } })
	t.check(r.rcpt[1] == SMFIR_CONTINUE, "HELO mail.example.net, authenticated: RCPT TO continues",
		"got " .. t.reply_name(r.rcpt[1]))
end)
