// Command prescient-scheduler is kube-scheduler (k8s.io/kubernetes v1.37)
// with Prescient's placement plugin compiled in. It takes kube-scheduler's
// flags; its --config names a KubeSchedulerConfiguration whose profile
// enables the plugin "Prescient" (see deploy/ and docs/kubernetes.md), and
// pods opt in with spec.schedulerName.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"

	"github.com/prescient-sched/prescient/k8s/internal/scheduler"
)

func main() {
	cmd := app.NewSchedulerCommand(app.WithPlugin(scheduler.Name, scheduler.New))
	os.Exit(cli.Run(cmd))
}
