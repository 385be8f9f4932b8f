-- helo_non_fqdn_only.lua - with helo.reject_invalid = false only the FQDN
-- check runs, as Postfix's reject_non_fqdn_helo_hostname alone: it tests
-- the name's syntax before the dot, so a malformed name is refused too,
-- with 504 "need fully-qualified hostname" (never 501 "Invalid name").  A
-- bad address literal still gets 501 "invalid ip address".
--
--@conf trusted_networks = [ ];
--@conf helo: { reject_invalid = false; };
--@log 504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <usuario-10c7392>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <192.0.2.1>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <ex..ample.com>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <-bad.example.com>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <exa?mple.com>: Helo command rejected: need fully-qualified hostname;
--@log 504 5.5.2 <example.com..>: Helo command rejected: need fully-qualified hostname;
--@log 501 5.5.2 <[192.0.2.256]>: Helo command rejected: invalid ip address;
--@nolog Invalid name

local t = dofile((os.getenv("MXGATE_TEST_DIR") or ".") .. "/lib.lua")

local cases = {
	{ "mail.example.net", false },
	{ "[192.0.2.1]", false },
	{ "localhost", true },
	{ "usuario-10c7392", true },
	{ "192.0.2.1", true },
	{ "ex..ample.com", true },
	{ "-bad.example.com", true },
	{ "exa mple.com", true },
	{ "example.com..", true },
	{ "[192.0.2.256]", true },
}

t.run(function()
	t.check_helo_cases(cases)
end)
