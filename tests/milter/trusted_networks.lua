-- trusted_networks.lua - a client whose address is in trusted_networks
-- gets no check at all (a bad HELO passes); any other client does.  A list
-- in the file replaces the default one (127.0.0.0/8, ::1/128).
--
--@conf trusted_networks = [ "192.0.2.0/24", "2001:db8:1::/48" ];
--@log reject: RCPT from client.example.net[198.51.100.7]: 504 5.5.2 <localhost>
--@log reject: RCPT from client.example.net[2001:db8:2::5]: 504 5.5.2 <localhost>
--@log reject: RCPT from client.example.net[127.0.0.1]: 504 5.5.2 <localhost>
--@nolog [192.0.2.
--@nolog [2001:db8:1::

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

-- { client address, trusted? }
local cases = {
	{ "192.0.2.9", true },
	{ "192.0.2.255", true },
	{ "2001:db8:1::5", true },
	{ "2001:db8:1:ffff::1", true },
	{ "::ffff:192.0.2.9", true },
	{ "198.51.100.7", false },
	{ "192.0.3.1", false },
	{ "2001:db8:2::5", false },
	{ "127.0.0.1", false },
	{ "::1", false },
}

t.run(function()
	for _, c in ipairs(cases) do
		local ip, trusted = c[1], c[2]
		t.check_rcpts({ ip = ip, helo = "localhost",
				rcpts = { "<r1@example.org>", "<r2@example.org>" } },
			      t.refusal(not trusted),
			      "client " .. ip .. ", HELO localhost: " ..
			      (trusted and "trusted, RCPTs continue" or "not trusted, RCPTs refused"))
	end
end)
