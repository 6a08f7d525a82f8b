package linkflow

// Sign-in links are limited per chat account (LinkerOptions.
// SignInLinksPerMinute) by a ratelimit.Limiter on the Linker's clock: a
// bucket of that many links, refilled evenly over a minute, in bounded
// memory. Only chat accounts whose callbacks were verified reach it.

// signInKey names the chat account p in the sign-in link limiter.
func signInKey(p PlatformUser) string {
	return p.Platform + "\x00" + p.Workspace + "\x00" + p.UserID
}
