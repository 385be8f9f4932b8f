-- exempt_daemon.lua - a connection whose {daemon_name} (sent with the
-- connect information) is listed in helo.exempt_daemons is not held to the
-- HELO check; any other name, or none, is.
--
--@conf trusted_networks = [ ];
--@conf helo: { exempt_daemons = [ "submission", "smtps" ]; };
--@log reject: RCPT from client.example.net[192.0.2.1]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

-- { {daemon_name} or nil, refused? }
local cases = {
	{ "submission", false },
	{ "smtps", false },
	{ "smtpd", true },
	{ "submission2", true },
	{ "", true },
	{ nil, true },
}

t.run(function()
	for _, c in ipairs(cases) do
		local daemon, refused = c[1], c[2]
		local what = daemon and ("{daemon_name} \"" .. daemon .. "\"") or "no {daemon_name}"
		for _, helo in ipairs({ "localhost", "[192.0.2.256]" }) do
			local r = t.transaction({ helo = helo,
						  connect_macros = daemon and { ["{daemon_name}"] = daemon } or nil })
			local want = refused and SMFIR_REPLYCODE or SMFIR_CONTINUE
			t.check(r.mail == SMFIR_CONTINUE and r.rcpt[1] == want,
				"HELO " .. helo .. ", " .. what .. ": RCPT TO " ..
				(refused and "refused" or "continues"),
				"got MAIL " .. t.reply_name(r.mail) .. ", RCPT " .. t.reply_name(r.rcpt[1]))
		end
	end
end)
