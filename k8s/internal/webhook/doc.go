// Package webhook is the mutating admission webhook: at pod creation it
// signs each opted-in pod's containers (podsig), asks the predictor service
// for their curves, and rewrites CPU and memory requests (and the limits a
// container declared) to the predicted values, recording in the
// prescient.io/resources annotation what was declared, what was set and
// why. It never denies a pod. Handler serves AdmissionReview v1;
// KubeOwners resolves a Job to its CronJob for the signature's owner kind.
package webhook
