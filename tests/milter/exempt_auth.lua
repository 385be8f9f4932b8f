-- exempt_auth.lua - with helo.exempt_authenticated (the default) a client
-- whose MAIL FROM comes with a non-empty {auth_authen} macro is not held to
-- the HELO check; an empty value, or other macros alone, exempt nobody.
--
--@conf trusted_networks = [ ];
--@log reject: RCPT from client.example.net[192.0.2.1]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;
--@nolog from=<<alice@example.net>>
--@nolog from=<alice@example.net>

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

-- { what, MAIL macros, refused? }
local cases = {
	{ "{auth_authen} set", { ["{auth_authen}"] = "alice@example.net" }, false },
	{ "{auth_authen} set with {auth_type}",
	  { ["{auth_authen}"] = "bob", ["{auth_type}"] = "PLAIN" }, false },
	{ "{auth_authen} empty", { ["{auth_authen}"] = "" }, true },
	{ "only {auth_type}", { ["{auth_type}"] = "PLAIN" }, true },
	{ "no macros", nil, true },
}

t.run(function()
	for _, c in ipairs(cases) do
		local what, macros, refused = c[1], c[2], c[3]
		local sender = (macros and macros["{auth_authen}"] == "alice@example.net")
			and "<alice@example.net>" or "<sender@example.net>"
		local r = t.transaction({ helo = "localhost", mail_macros = macros, sender = sender })
		t.check(r.mail == SMFIR_CONTINUE, "HELO localhost, " .. what .. ": MAIL FROM continues",
			"got " .. t.reply_name(r.mail))
		local want = refused and SMFIR_REPLYCODE or SMFIR_CONTINUE
		t.check(r.rcpt[1] == want,
			"HELO localhost, " .. what .. ": RCPT TO " .. (refused and "refused" or "continues"),
			"got " .. t.reply_name(r.rcpt[1]) .. ", want " .. t.reply_name(want))
	end

	-- Several recipients of an authenticated client all pass.
	local r = t.transaction({ helo = "[192.0.2.256]", mail_macros = { ["{auth_authen}"] = "carol" },
				  rcpts = { "<r1@example.org>", "<r2@example.org>" } })
	t.check(r.rcpt[1] == SMFIR_CONTINUE and r.rcpt[2] == SMFIR_CONTINUE,
		"HELO [192.0.2.256], authenticated: both recipients continue",
		"got " .. t.reply_name(r.rcpt[1]) .. ", " .. t.reply_name(r.rcpt[2]))
end)
