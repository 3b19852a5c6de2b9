// Package cred owns running a piece of the daemon's own code with a local
// user's file-access rights: Do(c, fn) runs fn on a fresh OS thread whose
// supplementary groups, effective gid and effective uid are those of c, so
// that every path fn opens, stats or lists is checked by the kernel exactly
// as for that user's own shell — a file the user cannot read is "permission
// denied", a name inside a directory the user cannot search is "permission
// denied" whether it exists or not.
//
// The daemon runs as root and acts on paths that users name (task inputs,
// programs, scripts, working directories). Doing that work with root's
// rights would tell a user what only root may know (a file's size, whether
// a name exists in a 0700 directory, whether a guess matches a secret
// file's digest); doing it inside Do tells them nothing their own shell
// would not.
//
// Linux only: elsewhere Do runs fn directly for the process's own user and
// refuses any other (ErrUnsupported).
//
// Do is safe for concurrent use; each call has its own thread. fn must do
// its file work on the calling goroutine: goroutines it starts run on
// other threads, with the process's (root's) rights.
package cred
