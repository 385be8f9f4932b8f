-- helo_invalid_only.lua - with helo.reject_non_fqdn = false only names of
-- bad syntax are refused, with 501 "Invalid name" (Postfix's
-- reject_invalid_helo_hostname alone), the same reply they get with both
-- restrictions on: a single label or a bare address passes.
--
--@conf trusted_networks = [ ];
--@conf helo: { reject_non_fqdn = false; };
--@log 501 5.5.2 <a..b.example.net>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <-mail.example.net>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <mail?example.net>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <ex..ample.com>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <example.com..>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <%s%n%x.example.com>: Helo command rejected: Invalid name;
--@log 501 5.5.2 <[192.0.2.256]>: Helo command rejected: invalid ip address;
--@nolog need fully-qualified hostname

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

local cases = {
	{ "localhost", false },
	{ "usuario-10c7392", false },
	{ "192.0.2.1", false },
	{ "mail.example.net", false },
	{ "a..b.example.net", true },
	{ "-mail.example.net", true },
	{ "mail example.net", true },
	{ "ex..ample.com", true },
	{ "example.com..", true },
	{ "%s%n%x.example.com", true },
	{ "[192.0.2.256]", true },
}

t.run(function()
	t.check_helo_cases(cases)
end)
