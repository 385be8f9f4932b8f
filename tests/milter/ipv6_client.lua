-- ipv6_client.lua - an IPv6 client is checked like an IPv4 one and logged
-- with its address; an IPv6 address literal is a valid HELO.
--
--@conf trusted_networks = [ ];
--@log reject: RCPT from client6.example.net[2001:db8::25]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;
--@log reject: RCPT from client6.example.net[2001:db8::25]: 501 5.5.2 <[IPv6:2001:db8::g]>: Helo command rejected: invalid ip address;
--@log reject: RCPT from client6.example.net[::1]: 504 5.5.2 <localhost>
--@log reject: RCPT from client6.example.net[192.0.2.44]: 504 5.5.2 <localhost>

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

-- { client, HELO, refused? }
local cases = {
	{ "2001:db8::25", "localhost", true },
	{ "2001:db8::25", "[IPv6:2001:db8::g]", true },
	{ "2001:db8::25", "mail6.example.net", false },
	{ "2001:db8::25", "[IPv6:2001:db8::25]", false },
	{ "2001:db8::25", "[IPv6:::ffff:192.0.2.1]", false },
	{ "::1", "localhost", true },
	-- An IPv4-mapped address is logged (and matched) as IPv4.
	{ "::ffff:192.0.2.44", "localhost", true },
}

t.run(function()
	for _, c in ipairs(cases) do
		local ip, helo, refused = c[1], c[2], c[3]
		local want, word = t.refusal(refused)
		t.check_rcpts({ ip = ip, host = "client6.example.net", helo = helo }, want,
			      "client " .. ip .. ", HELO " .. helo .. ": RCPT " .. word)
	end
end)
