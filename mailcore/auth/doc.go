// Package auth verifies password sign-ins for the mail protocols (SMTP AUTH
// now, IMAP LOGIN and AUTHENTICATE PLAIN later) and defends them against
// guessing.
//
// Who may sign in: the username is an address, normalised like every
// address in the store (trimmed, lower-cased). It may be the account's own
// address or one of its aliases: staff know their mail by the address they
// were given, which is often an alias, and an alias resolves to exactly one
// account. Subaddresses (local+tag@domain) are not usernames. The account
// must have status active and a password hash (an SSO-only account has
// none). A wrong password, an unknown user, a disabled or departed account,
// an SSO-only account and an unusable stored hash all give the same
// ErrInvalidCredentials, after the same password-hashing work, so a client
// cannot tell which it was; the log says which, with the account and the
// remote IP, never the password.
//
// Guessing defence, recorded in the auth_failures table so that every node
// sharing the database counts the same failures:
//   - failures are counted per account (keyed by the account's own address,
//     so an alias and the address share one count; unknown addresses are
//     counted under the name given, names that are not addresses under one
//     shared key) and per remote IP, within a window
//     (default 15 minutes after the first failure);
//   - from DelayAfter failures of the account (default 3), or IPDelayAfter
//     of the IP (default 10), each further attempt waits before it is
//     checked, doubling from BaseDelay (1 s) up to MaxDelay (30 s): the
//     client sees slow answers, a person mistyping hardly notices;
//   - at LockAfter failures of the account (default 10), or IPLockAfter of
//     the IP (default 50: many staff share a NAT address), the key is
//     locked for Lockout (default 15 minutes): attempts get ErrLockedOut
//     without the password being checked, even a right one;
//   - a success clears the account's count (not the IP's: one valid
//     account must not launder an IP's guesses at others);
//   - rows whose window and lockout are over are pruned (Prune, also run
//     from Authenticate at most once a minute).
//
// The account lockout lets anyone lock a known address out for the lockout
// period by guessing; that is the accepted cost of stopping a distributed
// guess at one account, and why the lockout is temporary.
//
// Time and sleeping are injected (Options.Now, Options.Sleep) so tests
// drive the schedule without waiting.
package auth
