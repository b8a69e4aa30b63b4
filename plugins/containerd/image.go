package containerd

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/images/archive"
	"github.com/containerd/containerd/remotes"
	"github.com/containerd/containerd/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/distribution/reference"

	"github.com/berth-dev/berth/plugins/driver"
)

// normalizeRef turns "redis:7" into "docker.io/library/redis:7".
func normalizeRef(ref string) (string, error) {
	named, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("image reference %q: %w", ref, err)
	}
	return named.String(), nil
}

// ensureImage returns the task's image, unpacked: loaded from an OCI (or
// docker-save) archive when s.Load is set, reused when present and not
// force_pull, pulled otherwise.
func (d *Driver) ensureImage(ctx context.Context, client *containerd.Client, cfg *driver.TaskConfig, s *taskSpec, ccfg *driver.ContainerdConfig, snapshotter string) (containerd.Image, error) {
	ref, err := normalizeRef(s.Image)
	if err != nil {
		return nil, err
	}
	if s.Load != "" {
		return d.loadArchive(ctx, client, cfg, s.Load, ref, snapshotter)
	}
	if !s.ForcePull {
		if img, err := client.GetImage(ctx, ref); err == nil {
			if err := unpack(ctx, img, snapshotter); err != nil {
				return nil, err
			}
			return img, nil
		} else if !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("look up image %s: %w", ref, err)
		}
	}
	timeout := s.PullTimeout
	if timeout == 0 {
		timeout = defaultPullTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	img, err := client.Pull(pctx, ref,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(snapshotter),
		containerd.WithResolver(newResolver(ccfg, s.Auth)))
	if err != nil {
		return nil, fmt.Errorf("pull image %s: %w", ref, err)
	}
	d.logger.Info("image pulled", "image", ref, "duration", time.Since(start))
	return img, nil
}

func unpack(ctx context.Context, img containerd.Image, snapshotter string) error {
	ok, err := img.IsUnpacked(ctx, snapshotter)
	if err != nil {
		return fmt.Errorf("image %s: check unpacked: %w", img.Name(), err)
	}
	if ok {
		return nil
	}
	if err := img.Unpack(ctx, snapshotter); err != nil {
		return fmt.Errorf("unpack image %s: %w", img.Name(), err)
	}
	return nil
}

// loadArchive imports the archive (path relative to the task dir) and
// returns the image named ref. An archive holding one unnamed-or-otherwise
// named image has that image tagged as ref, as `docker load` + `image`
// users expect.
func (d *Driver) loadArchive(ctx context.Context, client *containerd.Client, cfg *driver.TaskConfig, path, ref, snapshotter string) (containerd.Image, error) {
	if !filepath.IsAbs(path) {
		path = filepath.Join(cfg.TaskDir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load image archive: %w", err)
	}
	defer f.Close()
	repo := ref
	if named, err := reference.ParseNormalizedNamed(ref); err == nil {
		repo = named.Name()
	}
	imported, err := client.Import(ctx, f, containerd.WithImageRefTranslator(archive.AddRefPrefix(repo)))
	if err != nil {
		return nil, fmt.Errorf("import image archive %s: %w", path, err)
	}
	var target *images.Image
	for i := range imported {
		if imported[i].Name == ref {
			target = &imported[i]
		}
	}
	if target == nil {
		if len(imported) != 1 {
			return nil, fmt.Errorf("image archive %s holds %d images, none named %s", path, len(imported), ref)
		}
		im := images.Image{Name: ref, Target: imported[0].Target}
		is := client.ImageService()
		if _, err := is.Update(ctx, im, "target"); errdefs.IsNotFound(err) {
			if _, err := is.Create(ctx, im); err != nil {
				return nil, fmt.Errorf("tag imported image as %s: %w", ref, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("tag imported image as %s: %w", ref, err)
		}
	}
	img, err := client.GetImage(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("imported image %s: %w", ref, err)
	}
	if err := unpack(ctx, img, snapshotter); err != nil {
		return nil, err
	}
	d.logger.Info("image loaded from archive", "image", ref, "archive", path)
	return img, nil
}

// newResolver resolves through the configured mirrors first, then the
// registry itself (plain HTTP for insecure registries), with per-host
// credentials; taskAuth, when set, is used for every host of this pull.
func newResolver(cfg *driver.ContainerdConfig, taskAuth *driver.RegistryAuth) remotes.Resolver {
	if cfg == nil {
		cfg = &driver.ContainerdConfig{}
	}
	httpClient := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	creds := func(host string) (string, string, error) {
		if taskAuth != nil && (taskAuth.Username != "" || taskAuth.Password != "") {
			return taskAuth.Username, taskAuth.Password, nil
		}
		if a, ok := cfg.Auth[host]; ok {
			return a.Username, a.Password, nil
		}
		if host == "registry-1.docker.io" {
			if a, ok := cfg.Auth["docker.io"]; ok {
				return a.Username, a.Password, nil
			}
		}
		return "", "", nil
	}
	authorizer := docker.NewDockerAuthorizer(docker.WithAuthClient(httpClient), docker.WithAuthCreds(creds))
	hosts := func(host string) ([]docker.RegistryHost, error) {
		var out []docker.RegistryHost
		var errs []error
		for _, m := range cfg.Mirrors[host] {
			rh, err := mirrorHost(m)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rh.Client, rh.Authorizer = httpClient, authorizer
			out = append(out, rh)
		}
		if len(out) == 0 && len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		real := host
		if host == "docker.io" {
			real = "registry-1.docker.io"
		}
		scheme := "https"
		for _, h := range cfg.InsecureRegistries {
			if h == host || h == real {
				scheme = "http"
			}
		}
		out = append(out, docker.RegistryHost{
			Client: httpClient, Authorizer: authorizer, Host: real, Scheme: scheme, Path: "/v2",
			Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve | docker.HostCapabilityPush,
		})
		return out, nil
	}
	return docker.NewResolver(docker.ResolverOptions{Hosts: hosts})
}

// mirrorHost reads a mirror endpoint ("http://127.0.0.1:5000",
// "https://mirror.example/prefix"; no scheme means https).
func mirrorHost(endpoint string) (docker.RegistryHost, error) {
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return docker.RegistryHost{}, fmt.Errorf("registry mirror %q: not a URL", endpoint)
	}
	path := strings.TrimSuffix(u.Path, "/")
	if !strings.HasSuffix(path, "/v2") {
		path += "/v2"
	}
	return docker.RegistryHost{
		Host: u.Host, Scheme: u.Scheme, Path: path,
		Capabilities: docker.HostCapabilityPull | docker.HostCapabilityResolve,
	}, nil
}
