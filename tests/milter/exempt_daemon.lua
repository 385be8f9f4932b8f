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
		local want, word = t.refusal(refused)
		for _, helo in ipairs({ "localhost", "[192.0.2.256]" }) do
			t.check_rcpts({ helo = helo,
					connect_macros = daemon and { ["{daemon_name}"] = daemon } or nil },
				      want, "HELO " .. helo .. ", " .. what .. ": RCPT TO " .. word)
		end
	end
end)
