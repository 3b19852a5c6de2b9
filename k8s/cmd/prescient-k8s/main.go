// Command prescient-k8s runs Prescient's Kubernetes parts and the local
// cluster's helpers:
//
//	prescient-k8s predictor  --dir DIR [--listen ADDR]         the predictor service
//	prescient-k8s agent      --node NAME --predictor URL [--dir DIR]  the node agent (DaemonSet)
//	prescient-k8s webhook    --tls-cert F --tls-key F --predictor URL [--listen ADDR]
//	prescient-k8s certs      ca|issue|pubkey ...                TLS material for the local cluster
//	prescient-k8s mkimage    --name REF --out FILE ...          an OCI image tarball for `ctr images import`
//	prescient-k8s sign       -f POD.json                        print each container's signature
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "predictor":
		err = runPredictor(ctx, args, log)
	case "webhook":
		err = runWebhook(ctx, args, log)
	case "agent":
		err = runAgent(ctx, args, log)
	case "certs":
		err = runCerts(args)
	case "mkimage":
		err = runMkimage(args)
	case "sign":
		err = runSign(args)
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "prescient-k8s %s: %v\n", os.Args[1], err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func usage() {
	fmt.Fprint(os.Stderr, `usage: prescient-k8s COMMAND [flags]   (COMMAND -h for its flags)

  predictor   serve the predictor (HTTP/JSON; runs persisted under --dir)
  webhook     serve the mutating admission webhook (HTTPS)
  agent       the node agent: profile pods, report runs, resize in place
  certs       make a CA, issue certificates, export a public key (local cluster)
  mkimage     write an OCI image tarball from local files (local cluster)
  sign        print the signature of each container of a pod (JSON or YAML file)
`)
}

func logLevel() slog.Level {
	if os.Getenv("PRESCIENT_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}
