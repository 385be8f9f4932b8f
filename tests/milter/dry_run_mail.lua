-- dry_run_mail.lua - dry_run also holds when the HELO check is enforced at
-- MAIL FROM: the refusal is logged as reject_warning, MAIL continues.
--
--@conf trusted_networks = [ ];
--@conf dry_run = true;
--@conf helo: { enforce_at = "mail"; };
--@log NOQUEUE: reject_warning: MAIL from client.example.net[192.0.2.1]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;
--@nolog : reject:

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

t.run(function()
	local r = t.transaction({ helo = "localhost" })
	t.check(r.mail == SMFIR_CONTINUE, "dry run, HELO localhost: MAIL FROM continues",
		"got " .. t.reply_name(r.mail))
	t.check(r.rcpt[1] == SMFIR_CONTINUE, "dry run, HELO localhost: RCPT TO continues",
		"got " .. t.reply_name(r.rcpt[1]))
end)
