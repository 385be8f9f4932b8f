-- dry_run.lua - with dry_run = true nothing is refused, at RCPT or at MAIL,
-- and each refusal that would have been given is logged as reject_warning.
--
--@conf trusted_networks = [ ];
--@conf dry_run = true;
--@log NOQUEUE: reject_warning: RCPT from client.example.net[192.0.2.1]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;
--@log NOQUEUE: reject_warning: RCPT from client.example.net[192.0.2.1]: 501 5.5.2 <[192.0.2.256]>: Helo command rejected: invalid ip address;
--@nolog : reject:

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

t.run(function()
	for _, helo in ipairs({ "localhost", "[192.0.2.256]", "a..b.example.net", "mail.example.net" }) do
		local conn = t.session({ helo = helo })
		if conn then
			local m = t.mail(conn, "<sender@example.net>")
			local r1 = t.rcpt(conn, "<r1@example.org>")
			local r2 = t.rcpt(conn, "<r2@example.org>")
			local d = t.data(conn)
			t.check(m == SMFIR_CONTINUE and r1 == SMFIR_CONTINUE and r2 == SMFIR_CONTINUE,
				"dry run, HELO " .. helo .. ": MAIL and both RCPTs continue",
				"got " .. t.reply_name(m) .. ", " .. t.reply_name(r1) .. ", " .. t.reply_name(r2))
			t.check(d == SMFIR_ACCEPT, "dry run, HELO " .. helo .. ": DATA accepted",
				"got " .. t.reply_name(d))
			t.quit(conn)
		end
	end
end)
