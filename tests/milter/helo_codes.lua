-- helo_codes.lua - a bad HELO/EHLO name is refused at RCPT TO, not at MAIL
-- FROM (default enforce_at = "rcpt"); a good one is not.  Every RCPT of the
-- transaction is refused, the last HELO of the session counts, the verdict
-- holds for later transactions, and a session without HELO gets no opinion.
--
-- The reply texts, invisible to miltertest, are checked in mxgate's log
-- (the --@log lines, read by miltertest.sh).  With both restrictions on,
-- the syntax check runs first, as with Postfix's
-- "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname": a
-- malformed name gets 501 "Invalid name", a well-formed name without a dot
-- (or a bare address) 504 "need fully-qualified hostname".
--
--@conf trusted_networks = [ ];
--@log NOQUEUE: reject: RCPT from client.example.net[192.0.2.1]: 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <usuario-10c7392>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <mail.>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <192.0.2.1>: Helo command rejected: need fully-qualified hostname;
--@log 501 5.5.2 <a..b.example.net>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <ex..ample.com>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <-bad.example.com>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <bad-.example.com>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <exa?mple.com>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <example.com..>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <%s%n%x.example.com>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <mail%example.net>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <[192.0.2.256]>: Helo command rejected: invalid ip address;
--@log 501 5.5.2 <[IPv6:2001:db8::zz]>: Helo command rejected: invalid ip address;
--@nolog <ex..ample.com>: Helo command rejected: need fully-qualified hostname
--@nolog <a..b.example.net>: Helo command rejected: need fully-qualified hostname
--@nolog <localhost>: Helo command rejected: Invalid name
--@log helo=<localhost> check=helo
--@log from=<sender@example.net> to=<rcpt@example.org> helo=<localhost> check=helo
--@nolog reject: MAIL from
--@nolog helo=<mail.example.net> check=helo

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

local label63 = string.rep("a", 63)
local name255 = table.concat({ label63, label63, label63, label63 }, ".")
local name256 = table.concat({ label63, label63, label63, string.rep("b", 62), "x" }, ".")

-- { HELO name, refused?, why }
local cases = {
	{ "mail.example.net", false, "an FQDN" },
	{ "MAIL.Example.NET", false, "an FQDN in mixed case" },
	{ "mail.example.net.", false, "an FQDN with one trailing dot" },
	{ "mail-1.example.net", false, "a hyphen inside a label" },
	{ "a_b.example.net", false, "an underscore" },
	{ "xn--bcher-kva.example", false, "an IDNA label" },
	{ "1.example.net", false, "a numeric label in a non-numeric name" },
	{ label63 .. ".example", false, "a 63-character label" },
	{ name255, false, "a 255-character name" },
	{ "[192.0.2.1]", false, "an IPv4 address literal" },
	{ "[IPv6:2001:db8::1]", false, "an IPv6 address literal" },
	{ "[ipv6:2001:db8::1]", false, "an IPv6 literal with a lower-case tag" },
	{ "localhost", true, "a single label" },
	{ "usuario-10c7392", true, "a single label with a hyphen" },
	{ "mail.", true, "a single label with a trailing dot" },
	{ "192.0.2.1", true, "a bare IPv4 address (all digits and dots)" },
	{ "mail.example.net..", true, "two trailing dots" },
	{ "a..b.example.net", true, "an empty label" },
	{ ".mail.example.net", true, "a leading dot" },
	{ "-mail.example.net", true, "a label starting with a hyphen" },
	{ "mail-.example.net", true, "a label ending with a hyphen" },
	{ "ex..ample.com", true, "an empty label inside" },
	{ "-bad.example.com", true, "a first label starting with a hyphen" },
	{ "bad-.example.com", true, "a first label ending with a hyphen" },
	{ "exa mple.com", true, "a space inside a label" },
	{ "example.com..", true, "two trailing dots after a domain" },
	{ "%s%n%x.example.com", true, "printf directives" },
	{ "mail example.net", true, "a space" },
	{ "mail@example.net", true, "an @" },
	{ "mail%example.net", true, "a per cent sign" },
	{ string.rep("a", 64) .. ".example", true, "a 64-character label" },
	{ name256, true, "a 256-character name" },
	{ "[192.0.2.256]", true, "an IPv4 literal with a byte over 255" },
	{ "[192.0.2]", true, "an IPv4 literal with three bytes" },
	{ "[IPv6:2001:db8::zz]", true, "an IPv6 literal with non-hex digits" },
	{ "[mail.example.net]", true, "a host name in brackets" },
	{ "[]", true, "empty brackets" },
}

t.run(function()
	for _, c in ipairs(cases) do
		local name, refused, why = c[1], c[2], c[3]
		local shown = #name > 40 and (name:sub(1, 20) .. "...(" .. #name .. ")") or name
		local r = t.transaction({ helo = name })
		t.check(r.mail == SMFIR_CONTINUE, string.format("HELO %s (%s): MAIL FROM continues", shown, why),
			"got " .. t.reply_name(r.mail))
		local want = refused and SMFIR_REPLYCODE or SMFIR_CONTINUE
		t.check(r.rcpt[1] == want,
			string.format("HELO %s (%s): RCPT TO %s", shown, why,
				      refused and "refused" or "continues"),
			"got " .. t.reply_name(r.rcpt[1]) .. ", want " .. t.reply_name(want))
	end

	-- Every recipient of the transaction is refused.
	local r = t.transaction({ helo = "localhost",
				  rcpts = { "<r1@example.org>", "<r2@example.org>", "<r3@example.org>" } })
	for i = 1, 3 do
		t.check(r.rcpt[i] == SMFIR_REPLYCODE, "HELO localhost: recipient " .. i .. " of 3 refused",
			"got " .. t.reply_name(r.rcpt[i]))
	end

	-- The last HELO of the session counts, both ways.
	r = t.transaction({ helo = { "localhost", "mail.example.net" } })
	t.check(r.rcpt[1] == SMFIR_CONTINUE, "HELO localhost then HELO mail.example.net: RCPT continues",
		"got " .. t.reply_name(r.rcpt[1]))
	r = t.transaction({ helo = { "mail.example.net", "localhost" } })
	t.check(r.rcpt[1] == SMFIR_REPLYCODE, "HELO mail.example.net then HELO localhost: RCPT refused",
		"got " .. t.reply_name(r.rcpt[1]))

	-- The verdict holds for the next transaction of the session (after RSET).
	local conn = t.session({ helo = "localhost" })
	if conn then
		t.mail(conn, "<sender@example.net>")
		t.rcpt(conn, "<rcpt@example.org>")
		t.abort(conn)
		local m = t.mail(conn, "<sender@example.net>")
		t.check(m == SMFIR_CONTINUE, "HELO localhost, second transaction: MAIL continues",
			"got " .. t.reply_name(m))
		local rr = t.rcpt(conn, "<rcpt@example.org>")
		t.check(rr == SMFIR_REPLYCODE, "HELO localhost, second transaction: RCPT refused",
			"got " .. t.reply_name(rr))
		t.quit(conn)
	end

	-- A HELO after a transaction replaces the verdict for the next one.
	conn = t.session({ helo = "localhost" })
	if conn then
		t.mail(conn, "<sender@example.net>")
		t.rcpt(conn, "<rcpt@example.org>")
		t.abort(conn)
		t.helo(conn, "mail.example.net")
		t.mail(conn, "<sender@example.net>")
		local rr = t.rcpt(conn, "<rcpt@example.org>")
		t.check(rr == SMFIR_CONTINUE, "HELO localhost, RSET, HELO mail.example.net: RCPT continues",
			"got " .. t.reply_name(rr))
		t.quit(conn)
	end

	-- No HELO at all: no opinion.
	r = t.transaction({ helo = false })
	t.check(r.mail == SMFIR_CONTINUE, "no HELO: MAIL continues", "got " .. t.reply_name(r.mail))
	t.check(r.rcpt[1] == SMFIR_CONTINUE, "no HELO: RCPT continues", "got " .. t.reply_name(r.rcpt[1]))
end)
