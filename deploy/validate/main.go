// Command validate checks Quire's deployment files with the loaders the real tools use.
//
//	validate compose [--env-file F] FILE...   load the files with compose-go (the Compose Spec
//	                                           loader of `docker compose`) and print the project as JSON
//	validate k8s < manifests.yaml              decode every object of a YAML stream (kustomize output)
//	                                           strictly into the Kubernetes API types and print them as JSON
//
// Either exits 1 with the loader's error on stderr. tests/deploy/ runs it and checks the JSON
// against the code's settings; scripts/test.sh builds it with its caches outside the repository.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: validate compose [--env-file F] FILE... | validate k8s < manifests.yaml"))
	}
	var err error
	switch os.Args[1] {
	case "compose":
		err = composeCommand(os.Args[2:])
	case "k8s":
		err = k8sCommand(os.Stdin, os.Stdout)
	default:
		err = fmt.Errorf("unknown command %q (compose or k8s)", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "validate:", err)
	os.Exit(1)
}

type envFiles []string

func (e *envFiles) String() string     { return fmt.Sprint(*e) }
func (e *envFiles) Set(v string) error { *e = append(*e, v); return nil }

// composeCommand loads the files as `docker compose -f FILE... config` would: the process
// environment (and --env-file) interpolated, `${VAR:?message}` enforced, depends_on checked.
func composeCommand(args []string) error {
	flags := flag.NewFlagSet("compose", flag.ContinueOnError)
	var env envFiles
	flags.Var(&env, "env-file", "an env file to interpolate from (repeatable)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	files := flags.Args()
	if len(files) == 0 {
		return errors.New("compose: no file given")
	}
	options, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(filepath.Dir(files[0])),
		cli.WithOsEnv,
		cli.WithEnvFiles(env...),
		cli.WithDotEnv,
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return err
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		return err
	}
	encoder := json.NewEncoder(os.Stdout)
	encoder.SetIndent("", "  ")
	return encoder.Encode(project)
}

// The API groups Quire's manifests may use; any other kind is an error, not a pass.
func newScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, networkingv1.AddToScheme,
		policyv1.AddToScheme, autoscalingv2.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	return scheme, nil
}

type checked struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Name       string          `json:"name"`
	Namespace  string          `json:"namespace"`
	Object     json.RawMessage `json:"object"`
}

type report struct {
	Count   int       `json:"count"`
	Objects []checked `json:"objects"`
}

// k8sCommand decodes each document with the API machinery's strict serializer: an unknown or
// misspelt field, a duplicate field, a wrong type or an unknown kind fails, as the API server's
// strict field validation would.
func k8sCommand(in io.Reader, out io.Writer) error {
	scheme, err := newScheme()
	if err != nil {
		return err
	}
	strict := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
	reader := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var result report
	var problems []error
	for index := 0; ; index++ {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", index, err)
		}
		if len(bytes.TrimSpace(document)) == 0 || bytes.Equal(bytes.TrimSpace(document), []byte("---")) {
			continue
		}
		var meta unstructured.Unstructured
		if err := utilyaml.Unmarshal(document, &meta.Object); err != nil {
			return fmt.Errorf("document %d: %w", index, err)
		}
		where := fmt.Sprintf("%s %s/%s", meta.GetKind(), meta.GetNamespace(), meta.GetName())
		gvk := schema.FromAPIVersionAndKind(meta.GetAPIVersion(), meta.GetKind())
		if !scheme.Recognizes(gvk) {
			problems = append(problems, fmt.Errorf("%s: %s is not a kind this validator knows", where, gvk))
			continue
		}
		object, _, err := strict.Decode(document, &gvk, nil)
		if err != nil {
			problems = append(problems, fmt.Errorf("%s: %w", where, err))
			continue
		}
		for _, message := range validation.IsDNS1123Subdomain(meta.GetName()) {
			problems = append(problems, fmt.Errorf("%s: name: %s", where, message))
		}
		for key, value := range meta.GetLabels() {
			for _, message := range append(validation.IsQualifiedName(key), validation.IsValidLabelValue(value)...) {
				problems = append(problems, fmt.Errorf("%s: label %s=%s: %s", where, key, value, message))
			}
		}
		encoded, err := json.Marshal(object)
		if err != nil {
			return err
		}
		result.Objects = append(result.Objects, checked{
			APIVersion: meta.GetAPIVersion(), Kind: meta.GetKind(), Name: meta.GetName(),
			Namespace: meta.GetNamespace(), Object: encoded,
		})
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	result.Count = len(result.Objects)
	fmt.Fprintf(os.Stderr, "validate: %d objects decoded strictly into the Kubernetes API types\n", result.Count)
	encoder := json.NewEncoder(out)
	encoder.SetIndent("", "  ")
	return encoder.Encode(result)
}
