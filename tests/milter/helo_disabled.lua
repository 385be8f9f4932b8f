-- helo_disabled.lua - with helo.enabled = false no HELO name is refused.
--
--@conf trusted_networks = [ ];
--@conf helo: { enabled = false; };
--@nolog reject

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

t.run(function()
	for _, helo in ipairs({ "localhost", "a..b.example.net", "[192.0.2.256]" }) do
		local r = t.transaction({ helo = helo })
		t.check(r.mail == SMFIR_CONTINUE and r.rcpt[1] == SMFIR_CONTINUE,
			"HELO " .. helo .. ": MAIL and RCPT continue",
			"got MAIL " .. t.reply_name(r.mail) .. ", RCPT " .. t.reply_name(r.rcpt[1]))
	end
end)
