package cred_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/prescient-sched/prescient/internal/cred"
)

// A root daemon checks a path a user named with that user's rights, so the
// answer is the one the user's own shell would give.
func ExampleDo() {
	alice := cred.Credential{UID: 1000, GID: 1000, Groups: []uint32{1000}}
	err := cred.Do(alice, func() error {
		_, err := os.Stat("/root/.ssh/id_ed25519")
		return err
	})
	if errors.Is(err, fs.ErrPermission) {
		fmt.Println("permission denied, whether the file exists or not")
	}
}
