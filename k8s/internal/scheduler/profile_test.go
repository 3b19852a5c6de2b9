package scheduler

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2"
	fwk "k8s.io/kube-scheduler/framework"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
	schedconfig "k8s.io/kubernetes/pkg/scheduler/apis/config"
	"k8s.io/kubernetes/pkg/scheduler/backend/cache"
	"k8s.io/kubernetes/pkg/scheduler/framework/plugins"
	frameworkruntime "k8s.io/kubernetes/pkg/scheduler/framework/runtime"
	"k8s.io/kubernetes/pkg/scheduler/metrics"
	"sigs.k8s.io/yaml"
)

// deployedConfig is the prescient-scheduler's configuration as deploy/
// ships it (the config.yaml of its ConfigMap), loaded as kube-scheduler
// loads its --config: decoded and defaulted.
func deployedConfig(tb testing.TB) *schedconfig.KubeSchedulerConfiguration {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "deploy", "kubernetes", "base", "scheduler.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	var data string
	for doc := range strings.SplitSeq(string(raw), "\n---\n") {
		var cm corev1.ConfigMap
		if err := yaml.Unmarshal([]byte(doc), &cm); err == nil && cm.Kind == "ConfigMap" && cm.Name == "prescient-scheduler" {
			data = cm.Data["config.yaml"]
		}
	}
	if data == "" {
		tb.Fatal("deploy/kubernetes/base/scheduler.yaml: no ConfigMap prescient-scheduler with a config.yaml")
	}
	f := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := options.LoadConfigFromFile(klog.Background(), f)
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// TestDeployedProfile checks what the shipped profile runs, extension
// point by extension point, once the framework has expanded it: the plugin
// replaces the request-based fit and balance plugins, binds before
// DefaultBinder (the placement record rides on the binding), and commits
// in Permit, not PreBind (a PreBind plugin costs every pod a status patch).
func TestDeployedProfile(t *testing.T) {
	cfg := deployedConfig(t)
	if len(cfg.Profiles) != 1 || cfg.Profiles[0].SchedulerName != "prescient" {
		t.Fatalf("profiles %+v, want one named prescient", cfg.Profiles)
	}
	metrics.Register() // the framework counts into them
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := fake.NewClientset()
	registry := plugins.NewInTreeRegistry()
	if err := registry.Merge(frameworkruntime.Registry{Name: func(ctx context.Context, obj runtime.Object, h fwk.Handle) (fwk.Plugin, error) {
		return New(ctx, obj, h)
	}}); err != nil {
		t.Fatal(err)
	}
	fw, err := frameworkruntime.NewFramework(ctx, registry, &cfg.Profiles[0],
		frameworkruntime.WithClientSet(cs), frameworkruntime.WithInformerFactory(informers.NewSharedInformerFactory(cs, 0)),
		frameworkruntime.WithSnapshotSharedLister(cache.NewEmptySnapshot()))
	if err != nil {
		t.Fatal(err)
	}
	ps := fw.ListPlugins()
	names := func(set *schedconfig.PluginSet) []string {
		var out []string
		for _, p := range set.Enabled {
			out = append(out, p.Name)
		}
		return out
	}
	for _, c := range []struct {
		point     string
		set       *schedconfig.PluginSet
		has, hasn []string
	}{
		{"PreFilter", &ps.PreFilter, []string{Name}, nil},
		{"Filter", &ps.Filter, []string{Name, "NodeAffinity", "TaintToleration"}, []string{"NodeResourcesFit"}},
		{"PostFilter", &ps.PostFilter, []string{Name, "DefaultPreemption"}, nil},
		{"Score", &ps.Score, []string{Name}, []string{"NodeResourcesFit", "NodeResourcesBalancedAllocation"}},
		{"Reserve", &ps.Reserve, []string{Name}, nil},
		{"Permit", &ps.Permit, []string{Name}, nil},
		{"PreBind", &ps.PreBind, nil, []string{Name}},
	} {
		got := names(c.set)
		for _, n := range c.has {
			if !slices.Contains(got, n) {
				t.Errorf("%s runs %v: want %s among them", c.point, got, n)
			}
		}
		for _, n := range c.hasn {
			if slices.Contains(got, n) {
				t.Errorf("%s runs %v: want no %s", c.point, got, n)
			}
		}
	}
	// After DefaultPreemption: the plugin's PostFilter never places a pod,
	// and a pod a preemption nominates needs no retry time.
	if got := names(&ps.PostFilter); slices.Index(got, "DefaultPreemption") > slices.Index(got, Name) {
		t.Errorf("PostFilter runs %v: want DefaultPreemption before %s", got, Name)
	}
	if got := names(&ps.Bind); len(got) == 0 || got[0] != Name || !slices.Contains(got, "DefaultBinder") {
		t.Errorf("Bind runs %v: want %s first, then DefaultBinder", got, Name)
	}
}
