-- sql/grant.sql - mxgate's own read-only account.
--
-- mxgate only reads, so it gets SELECT and nothing else, and only on the
-- columns its default queries (and those of sql/README.md) read: it cannot
-- see password hashes, TOTP secrets or tokens, and cannot change a thing.
-- If you write queries that read other columns (mailbox.smtp_active, a join
-- on domain.active...), grant SELECT on those columns too.
--
-- Edit the database name ('postfix', postfixadmin's default) and the
-- password, then run as an administrator:   mariadb < sql/grant.sql
-- 'localhost' covers a unix socket (mysql.socket); '127.0.0.1' covers
-- mysql.host = "127.0.0.1".  Use the address mxgate connects from when the
-- database is on another host.

CREATE USER IF NOT EXISTS 'mxgate'@'localhost' IDENTIFIED BY 'change-me';
CREATE USER IF NOT EXISTS 'mxgate'@'127.0.0.1' IDENTIFIED BY 'change-me';

GRANT SELECT (username, maildir, quota, active, domain) ON postfix.mailbox TO 'mxgate'@'localhost', 'mxgate'@'127.0.0.1';
GRANT SELECT (address, goto, active, domain) ON postfix.alias TO 'mxgate'@'localhost', 'mxgate'@'127.0.0.1';
GRANT SELECT (alias_domain, target_domain, active) ON postfix.alias_domain TO 'mxgate'@'localhost', 'mxgate'@'127.0.0.1';
GRANT SELECT (domain, active, backupmx) ON postfix.domain TO 'mxgate'@'localhost', 'mxgate'@'127.0.0.1';
