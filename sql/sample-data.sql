-- sql/sample-data.sql - a small mail domain to try mxgate with (and what
-- tests/e2e/quota_mysql.sh starts from).  Load after schema.sql:
--   mariadb postfix < sql/sample-data.sql
-- Rows are what postfixadmin itself writes: every mailbox also has an
-- alias row pointing at itself, maildir is 'domain/local/' relative to
-- quota.maildir_root, and quota is in bytes (0 = unlimited).

INSERT INTO domain (domain, description, aliases, mailboxes, maxquota, quota, transport, active) VALUES
	('example.org', 'main domain', 0, 0, 0, 0, 'virtual', 1),
	('example.com', 'alias domain of example.org', 0, 0, 0, 0, 'virtual', 1),
	('example.net', 'catch-all domain', 0, 0, 0, 0, 'virtual', 1);

INSERT INTO mailbox (username, password, name, maildir, quota, local_part, domain, active) VALUES
	('bob@example.org',   '', 'Bob',   'example.org/bob/',   10485760, 'bob',   'example.org', 1),
	('carol@example.org', '', 'Carol', 'example.org/carol/',        0, 'carol', 'example.org', 1),
	('dave@example.org',  '', 'Dave',  'example.org/dave/',   1048576, 'dave',  'example.org', 0),
	('erin@example.org',  '', 'Erin',  'example.org/erin/',    102400, 'erin',  'example.org', 1),
	('postmaster@example.org', '', 'Postmaster', 'example.org/postmaster/', 52428800, 'postmaster', 'example.org', 1);

INSERT INTO alias (address, goto, domain, active) VALUES
	('bob@example.org',   'bob@example.org',   'example.org', 1),
	('carol@example.org', 'carol@example.org', 'example.org', 1),
	('dave@example.org',  'dave@example.org',  'example.org', 0),
	('erin@example.org',  'erin@example.org',  'example.org', 1),
	('postmaster@example.org', 'postmaster@example.org', 'example.org', 1),
	('team@example.org',  'bob@example.org,carol@example.org', 'example.org', 1),
	('abuse@example.org', 'postmaster@example.org', 'example.org', 1),
	('@example.net',      'bob@example.org',   'example.net', 1);

INSERT INTO alias_domain (alias_domain, target_domain, active) VALUES
	('example.com', 'example.org', 1);
