-- helo_required.lua - with helo.required = true, MAIL FROM from a client
-- that sent no HELO/EHLO is refused (503 5.5.1, Postfix's
-- smtpd_helo_required text); a client that greeted, and an authenticated
-- one, are not.
--
--@conf trusted_networks = [ ];
--@conf helo: { required = true; };
--@log NOQUEUE: reject: MAIL from client.example.net[192.0.2.1]: 503 5.5.1 Error: send HELO/EHLO first;
--@nolog reject: RCPT from

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

t.run(function()
	local r = t.transaction({ helo = false })
	t.check(r.mail == SMFIR_REPLYCODE, "no HELO: MAIL FROM refused", "got " .. t.reply_name(r.mail))

	t.check_rcpts({ helo = "mail.example.net" }, SMFIR_CONTINUE,
		      "HELO mail.example.net: MAIL and RCPT continue")

	r = t.transaction({ helo = false, mail_macros = { ["{auth_authen}"] = "alice@example.net" } })
	t.check(r.mail == SMFIR_CONTINUE, "no HELO, authenticated: MAIL FROM continues",
		"got " .. t.reply_name(r.mail))
end)
