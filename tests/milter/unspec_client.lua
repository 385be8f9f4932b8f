-- unspec_client.lua - a client of unknown address family (connect
-- information "unspec", as for a local submission) is checked and logged
-- as "unknown"; it is in no trusted network, not even 0.0.0.0/0 or ::/0.
--
--@conf trusted_networks = [ "0.0.0.0/0", "::/0" ];
--@log reject: RCPT from local.example.net[unknown]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;
--@nolog [192.0.2.1]

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

t.run(function()
	t.check_rcpts({ ip = "unspec", host = "local.example.net", helo = "localhost" },
		      SMFIR_REPLYCODE, "unspec client, HELO localhost: RCPT refused")
	t.check_rcpts({ ip = "unspec", host = "local.example.net", helo = "mail.example.net" },
		      SMFIR_CONTINUE, "unspec client, HELO mail.example.net: RCPT continues")
	t.check_rcpts({ ip = "unspec", host = "local.example.net", helo = false }, SMFIR_CONTINUE,
		      "unspec client, no HELO: RCPT continues")
	-- The same list does trust an ordinary client.
	t.check_rcpts({ ip = "192.0.2.1", helo = "localhost" }, SMFIR_CONTINUE,
		      "client 192.0.2.1 in 0.0.0.0/0, HELO localhost: RCPT continues")
end)
