-- lib.lua - shared helpers for mxgate's miltertest scripts.
--
-- Loaded by each script with
--   local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")
-- It speaks to the mxgate that tests/milter/miltertest.sh started for the
-- script (socket from $MXGATE_SOCKET, or inet:$MXGATE_PORT@127.0.0.1).  By
-- hand, against a daemon started with the script's --@conf lines:
--   MXGATE_PORT=8891 MXGATE_TEST_DIR=tests/milter \
--       miltertest -s tests/milter/helo_codes.lua
--
-- Results are printed with mt.echo as "TAP ok - NAME" / "TAP not ok - NAME"
-- lines (plus "TAP # ..." diagnostics); the runner numbers them and turns
-- them into TAP.  A script ends with t.done(), which prints "TAP done": a
-- script that dies before it (a Lua error, miltertest's own crash) is
-- reported as a failure by the runner even if every check so far passed.
--
-- miltertest facts these helpers work around:
--  * a step the filter negotiated away raises a Lua error, so each step is
--    guarded by mt.test_option and reported as a failed check instead;
--  * macros are sent only when the script sends them (t.session's
--    options, t.mail's auth argument);
--  * reply texts are invisible: only the reply command (SMFIR_*) is seen;
--  * mt.mailfrom sends a default HELO (test.example.com) first when the
--    script sent none; t.session{helo = false} avoids that by moving
--    miltertest's state past HELO with an abort, so the filter really sees
--    a session without HELO;
--  * miltertest copies a HELO, MAIL or RCPT argument into a 1 KiB stack
--    buffer without bounds checks: keep them well under 1000 bytes here
--    (tests/e2e/hostile.sh sends longer ones with a raw protocol client).

local t = {}

t.socket = os.getenv("MXGATE_SOCKET")
if t.socket == nil or t.socket == "" then
	t.socket = "inet:" .. (os.getenv("MXGATE_PORT") or "8891") .. "@127.0.0.1"
end
t.failed = 0
t.count = 0

-- Read timeout for each reply: far below the runner's per-script limit.
mt.set_timeout(tonumber(os.getenv("MXGATE_MT_TIMEOUT") or "5"))

-- SMFIR_* value -> name, for readable failure messages.
local reply_names = {}
for _, n in ipairs({ "SMFIR_CONTINUE", "SMFIR_ACCEPT", "SMFIR_REJECT",
		     "SMFIR_TEMPFAIL", "SMFIR_DISCARD", "SMFIR_REPLYCODE",
		     "SMFIR_SKIP" }) do
	if _G[n] ~= nil then
		reply_names[_G[n]] = n
	end
end

-- The name of reply code r ("SMFIR_CONTINUE", or "0x.." when unknown).
function t.reply_name(r)
	if r == nil then
		return "nil"
	end
	if reply_names[r] then
		return reply_names[r]
	end
	local n = math.tointeger(r) or 0
	if n > 32 and n < 127 then
		return string.format("'%s'", string.char(n))
	end
	return string.format("0x%02x", n)
end

-- One line to the runner; newlines would break its parsing.
local function emit(s)
	mt.echo("TAP " .. (tostring(s):gsub("[\r\n]", " ")))
end

-- A diagnostic line (the runner passes it through as "# ...").
function t.diag(msg)
	emit("# " .. msg)
end

-- Record one assertion; detail is printed only when it fails.
function t.check(cond, name, detail)
	t.count = t.count + 1
	if cond then
		emit("ok - " .. name)
	else
		t.failed = t.failed + 1
		emit("not ok - " .. name .. (detail and (" # " .. detail) or ""))
	end
	return cond
end

-- Record that the last reply on conn is want.
function t.expect(conn, want, name)
	local got = mt.getreply(conn)
	return t.check(got == want, name,
		       "got " .. t.reply_name(got) .. ", want " .. t.reply_name(want))
end

-- Run a protocol step (a function returning nil or an error string, or
-- raising one); a failure becomes a failed check.  Returns true if it went.
local function step(name, fn, ...)
	local ok, err = pcall(fn, ...)
	if ok and err == nil then
		return true
	end
	t.check(false, name .. " could be sent", tostring(err))
	return false
end

-- True when the filter negotiated step `option` (SMFIP_NO...) away; that
-- is recorded as a failed check named after what the script wanted to do.
local function negotiated_away(conn, option, what)
	if mt.test_option(conn, option) then
		t.check(false, what .. " is not negotiated away",
			"the filter asked for SMFIP_NO" .. what)
		return true
	end
	return false
end

-- Run step name (fn(conn, ...)) and return the filter's reply (an SMFIR_*
-- value), or nil when the step failed (already recorded).
local function reply_to(name, fn, conn, ...)
	if not step(name, fn, conn, ...) then
		return nil
	end
	return mt.getreply(conn)
end

-- Send the macros of table macros ({name} = value) with command cmd (an
-- SMFIC_* value); what names the step in a failure.  True if they went.
local function send_macros(conn, cmd, macros, what)
	local args = { conn, cmd }
	for k, v in pairs(macros) do
		args[#args + 1] = k
		args[#args + 1] = v
	end
	return step(what, mt.macro, table.unpack(args))
end

-- Connect to the daemon (with retries while it starts) and negotiate with
-- MTA offers version, protocol and actions (nil: miltertest's defaults,
-- i.e. everything a version 6 MTA offers).  Returns the connection or nil.
function t.connect(version, protocol, actions)
	local conn = mt.connect(t.socket, 50, 0.1)
	if conn == nil then
		t.check(false, "connect to " .. t.socket)
		return nil
	end
	if version ~= nil or protocol ~= nil or actions ~= nil then
		-- miltertest reads the 3rd argument as the protocol steps and the
		-- 4th as the actions, whatever its manual says; callers pass
		-- values for which the order does not matter.
		if not step("option negotiation", mt.negotiate, conn, version, protocol, actions) then
			return nil
		end
	end
	return conn
end

--[[
A session up to the end of HELO.  opts (all optional):
  ip        client address given to mt.conninfo ("192.0.2.1"; "unspec")
  host      client host name ("client.example.net")
  helo      HELO name, or false for a session without HELO
            ("mail.example.net"); a list sends each in turn (the last counts)
  connect_macros  table of {daemon_name} etc. sent with SMFIC_CONNECT
  version, protocol, actions  the MTA's negotiation offer (see t.connect)
Returns the connection, or nil when a step failed (already recorded).
]]
function t.session(opts)
	opts = opts or {}
	local conn = t.connect(opts.version, opts.protocol, opts.actions)
	if conn == nil then
		return nil
	end
	if opts.connect_macros and not send_macros(conn, SMFIC_CONNECT, opts.connect_macros,
						   "connect macros") then
		return nil
	end
	if negotiated_away(conn, SMFIP_NOCONNECT, "CONNECT") then
		return nil
	end
	if not step("connect information", mt.conninfo, conn,
		    opts.host or "client.example.net", opts.ip or "192.0.2.1") then
		return nil
	end
	local helo = opts.helo
	if helo == nil then
		helo = "mail.example.net"
	end
	if helo == false then
		-- mt.abort leaves miltertest in its "HELO done" state without
		-- sending HELO; the filter just sees an abort before any MAIL.
		if not step("abort before MAIL (session without HELO)", mt.abort, conn) then
			return nil
		end
		return conn
	end
	if type(helo) ~= "table" then
		helo = { helo }
	end
	for _, name in ipairs(helo) do
		if not t.helo(conn, name) then
			return nil
		end
	end
	return conn
end

-- Send HELO name.  Returns true if it was sent.
function t.helo(conn, name)
	if negotiated_away(conn, SMFIP_NOHELO, "HELO") then
		return false
	end
	return step("HELO " .. name, mt.helo, conn, name)
end

-- MAIL FROM sender (with optional ESMTP arguments); mail_macros is a table
-- of macros sent with SMFIC_MAIL first ({auth_authen} ...).  Returns the
-- reply (an SMFIR_* value) or nil when the step failed.
function t.mail(conn, sender, mail_macros, ...)
	if negotiated_away(conn, SMFIP_NOMAIL, "MAIL") then
		return nil
	end
	if mail_macros and next(mail_macros) ~= nil and
	    not send_macros(conn, SMFIC_MAIL, mail_macros, "MAIL macros") then
		return nil
	end
	return reply_to("MAIL FROM " .. sender, mt.mailfrom, conn, sender, ...)
end

-- RCPT TO rcpt.  Returns the reply or nil when the step failed.
function t.rcpt(conn, rcpt, ...)
	if negotiated_away(conn, SMFIP_NORCPT, "RCPT") then
		return nil
	end
	return reply_to("RCPT TO " .. rcpt, mt.rcptto, conn, rcpt, ...)
end

-- DATA.  Returns the reply or nil when the step failed.
function t.data(conn)
	if negotiated_away(conn, SMFIP_NODATA, "DATA") then
		return nil
	end
	return reply_to("DATA", mt.data, conn)
end

-- End the transaction (RSET / a refused MAIL): the next MAIL starts afresh.
function t.abort(conn)
	return step("abort", mt.abort, conn)
end

-- Close the session politely (QUIT), or abruptly when polite == false.
function t.quit(conn, polite)
	if conn == nil then
		return
	end
	if polite == false then
		mt.disconnect(conn, false)
	else
		mt.disconnect(conn)
	end
end

--[[
The common case: a session with HELO name (opts as for t.session, opts.helo
overrides), MAIL FROM, then each recipient of opts.rcpts (default one).
Returns a table { mail = reply, rcpt = { replies } } with nil for a step
that failed; the session is closed.
]]
function t.transaction(opts)
	opts = opts or {}
	local result = { rcpt = {} }
	local conn = t.session(opts)
	if conn == nil then
		return result
	end
	result.mail = t.mail(conn, opts.sender or "<sender@example.net>", opts.mail_macros)
	if result.mail == SMFIR_CONTINUE then
		for i, r in ipairs(opts.rcpts or { "<rcpt@example.org>" }) do
			result.rcpt[i] = t.rcpt(conn, r)
		end
	end
	t.quit(conn)
	return result
end

--[[
One check named name: in t.transaction(opts), MAIL FROM continues and every
recipient (opts.rcpts, default one) gets want, an SMFIR_* value.  Returns
whether it passed.
]]
function t.check_rcpts(opts, want, name)
	local r = t.transaction(opts)
	local ok, got = r.mail == SMFIR_CONTINUE, {}
	for i = 1, #(opts.rcpts or { "" }) do
		ok = ok and r.rcpt[i] == want
		got[i] = t.reply_name(r.rcpt[i])
	end
	return t.check(ok, name,
		       "got MAIL " .. t.reply_name(r.mail) .. ", RCPT " .. table.concat(got, ", "))
end

-- The RCPT reply a check that refuses (or passes) expects, and its word.
function t.refusal(refused)
	if refused then
		return SMFIR_REPLYCODE, "refused"
	end
	return SMFIR_CONTINUE, "continues"
end

-- For each { HELO name, refused? } of cases, a t.check_rcpts of a session
-- with that HELO, named "HELO NAME: RCPT refused" (or "continues").
function t.check_helo_cases(cases)
	for _, c in ipairs(cases) do
		local want, word = t.refusal(c[2])
		t.check_rcpts({ helo = c[1] }, want, "HELO " .. c[1] .. ": RCPT " .. word)
	end
end

-- Run the script's body, turning a Lua error into a failed check, then say
-- "done" so the runner knows the script ran to its end.
function t.run(body)
	local ok, err = pcall(body)
	if not ok then
		t.check(false, "script ran without a Lua error", tostring(err))
	end
	t.done()
end

function t.done()
	emit("done " .. t.count .. " " .. t.failed)
end

return t
