package daemon

import (
	"errors"
	"net/http"

	"github.com/prescient-sched/prescient/api"
	"github.com/prescient-sched/prescient/internal/cred"
	"github.com/prescient-sched/prescient/internal/task"
)

// sign computes spec's signature with the caller's rights: inside cred.Do,
// on a thread with who's uid, gid and groups, so every program, script and
// input is stat'ed, opened and listed as the caller's own shell would, and
// a refusal ("permission denied", "no such file or directory") is the one
// the caller would get there, telling nothing more — not a file's size,
// not whether a name exists in a directory the caller cannot search, not
// the digest of a file the caller cannot read (the Signer's cache serves a
// digest only after opening the file with the caller's rights). Root's
// submits are signed directly. The work is bounded by Config.Sign.
func (d *Daemon) sign(who identity, groups []uint32, spec task.Spec) (task.Signature, error) {
	var sig task.Signature
	err := cred.Do(cred.Credential{UID: who.UID, GID: who.GID, Groups: groups}, func() error {
		var err error
		sig, err = d.signer.Sign(spec)
		return err
	})
	return sig, err
}

// limitNames are the api.Error.Limit names of the Signer's budgets (the
// serve flags are the same with dashes).
var limitNames = map[string]string{
	task.LimitEntries:   "sign_max_entries",
	task.LimitCodeBytes: "sign_max_code_bytes",
	task.LimitTimeout:   "sign_timeout",
}

// signError is the reply to a submit that could not be signed.
func signError(err error) *api.Error {
	var le *task.LimitError
	switch {
	case errors.As(err, &le):
		name := limitNames[le.Limit]
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeLimitExceeded, Limit: name,
			Message: err.Error() + " (limit " + name + ")"}
	case errors.Is(err, cred.ErrSwitch):
		return &api.Error{Status: http.StatusInternalServerError, Code: api.CodeInternal,
			Message: "cannot sign the task with your rights: " + err.Error()}
	case errors.Is(err, task.ErrProgramNotFound):
		return &api.Error{Status: http.StatusBadRequest, Code: api.CodeProgramNotFound, Message: err.Error()}
	}
	return &api.Error{Status: http.StatusBadRequest, Code: api.CodeBadRequest, Message: err.Error()}
}
