-- helo_disabled.lua - with helo.enabled = false no HELO name is refused.
--
--@conf trusted_networks = [ ];
--@conf helo: { enabled = false; };
--@nolog reject

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

t.run(function()
	for _, helo in ipairs({ "localhost", "a..b.example.net", "[192.0.2.256]" }) do
		t.check_rcpts({ helo = helo }, SMFIR_CONTINUE,
			      "HELO " .. helo .. ": MAIL and RCPT continue")
	end
end)
