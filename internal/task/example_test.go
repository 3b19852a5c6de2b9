package task_test

import (
	"fmt"
	"log"

	"github.com/prescient-sched/prescient/internal/task"
)

func ExampleSigner_Sign() {
	s, err := task.NewSigner(task.SignerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	sig, err := s.Sign(task.Spec{
		Argv:   []string{"./bin/python3", "-u", "job.py", "data/day1.csv"},
		Inputs: []string{"data/day1.csv"},
		Env:    []string{"HOME=/home/ana", "PYTHONHASHSEED=0", "TERM=xterm"},
		Dir:    "testdata/example",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig.Hash)
	fmt.Println(sig.Argv)
	fmt.Println(sig.ScriptKind, sig.EnvKeys, sig.InputBytes)
	// Output:
	// 4c01345fae0124305e665fa0ecd047298424e7c1f27a268f891927d26735281a
	// [python3 -u <script> <input:csv:2^10>]
	// file [HOME PYTHONHASHSEED] 625
}

func ExampleNewSigner() {
	// The default deny list plus a per-run variable, and an allow list.
	s, err := task.NewSigner(task.SignerConfig{
		EnvAllow: []string{"LANG", "LC_*", "OMP_*"},
		EnvDeny:  append(task.DefaultEnvDeny(), "OMP_DISPLAY_ENV"),
	})
	if err != nil {
		log.Fatal(err)
	}
	sig, err := s.Sign(task.Spec{
		Argv: []string{"./bin/tool"},
		Env:  []string{"LANG=C", "OMP_NUM_THREADS=4", "OMP_DISPLAY_ENV=true", "HOME=/root"},
		Dir:  "testdata/example",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig.EnvKeys)
	// Output: [LANG OMP_NUM_THREADS]
}

func ExampleParseSize() {
	for _, s := range []string{"300M", "1.5GiB", "512k", "1024", "-1"} {
		n, err := task.ParseSize(s)
		fmt.Println(n, err)
	}
	// Output:
	// 314572800 <nil>
	// 1610612736 <nil>
	// 524288 <nil>
	// 1024 <nil>
	// 0 parse size "-1": negative: task: value out of range
}

func ExampleParseCPU() {
	for _, s := range []string{"0.25", "250m", "2", "0"} {
		v, err := task.ParseCPU(s)
		fmt.Println(v, err)
	}
	// Output:
	// 0.25 <nil>
	// 0.25 <nil>
	// 2 <nil>
	// 0 parse cpu "0": must be positive (omit it for no limit): task: value out of range
}

func ExampleParseRate() {
	v, err := task.ParseRate("12.5")
	fmt.Println(v, err)
	// Output: 12.5 <nil>
}
