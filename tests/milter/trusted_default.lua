-- trusted_default.lua - without trusted_networks in the file, loopback
-- clients (127.0.0.0/8, ::1/128) are trusted and get no check; others are
-- checked.  The configuration file is empty: every default.
--
--@log reject: RCPT from client.example.net[192.0.2.1]: 504 5.5.2 <localhost>
--@log reject: RCPT from client.example.net[2001:db8::1]: 504 5.5.2 <localhost>
--@nolog [127.
--@nolog [::1]

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

local cases = {
	{ "127.0.0.1", true },
	{ "127.1.2.3", true },
	{ "::1", true },
	{ "192.0.2.1", false },
	{ "2001:db8::1", false },
}

t.run(function()
	for _, c in ipairs(cases) do
		local ip, trusted = c[1], c[2]
		t.check_rcpts({ ip = ip, helo = "localhost" }, t.refusal(not trusted),
			      "client " .. ip .. ", HELO localhost: " ..
			      (trusted and "trusted by default, RCPT continues" or "not trusted, RCPT refused"))
	end
end)
