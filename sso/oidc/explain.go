package oidc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// Explain runs discovery and reads the JWKS the way New would, and reports
// what the OP offers and what govhub would accept and send, for
// `govhub sso test <name>`. Labels are zh-CN with the English term. An
// error means New would fail too.
func Explain(ctx context.Context, cfg Config) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	cfg.defaults()
	d, err := discover(ctx, cfg)
	if err != nil {
		return "", err
	}
	keys, err := fetchJWKS(ctx, cfg.HTTPClient, d.meta.JWKSURL)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	line := func(label, v string) { fmt.Fprintf(&b, "%s: %s\n", label, v) }
	or := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	yes := func(v bool) string {
		if v {
			return "是 yes"
		}
		return "否 no"
	}
	base := cfg.PublicURL + "/sso/oidc/" + cfg.Name
	line("提供方 provider", cfg.Name+" ("+cfg.Label+")")
	line("签发者 issuer", d.meta.Issuer)
	line("授权端点 authorization_endpoint", d.meta.AuthURL)
	line("令牌端点 token_endpoint", d.meta.TokenURL)
	line("用户信息端点 userinfo_endpoint", or(d.meta.UserInfoURL, "无 none"))
	line("密钥集 jwks_uri", d.meta.JWKSURL)
	var kids []string
	for _, k := range keys {
		use := k.Use
		if use == "" {
			use = "-"
		}
		kids = append(kids, fmt.Sprintf("%s (%s, use %s)", or(k.KeyID, "<no kid>"), or(k.Algorithm, "alg ?"), use))
	}
	line("签名密钥 JWKS key ids", or(strings.Join(kids, ", "), "无 none"))
	line("OP 签名算法 id_token_signing_alg_values", or(strings.Join(d.meta.Algorithms, " "), "未声明 not stated (RS256)"))
	line("本系统接受 algorithms accepted", strings.Join(d.algs, " "))
	line("PKCE S256 已声明 advertised", yes(slices.Contains(d.meta.CodeChallengeMethods, "S256")))
	auth := "client_secret_basic"
	switch {
	case cfg.ClientSecret == "":
		auth = "none (public client, PKCE)"
	case d.auth == oauth2.AuthStyleInParams:
		auth = "client_secret_post"
	}
	line("令牌端点认证 token auth (sent)", auth)
	line("单点退出 end_session_endpoint", or(d.meta.EndSessionURL, "无 none (退出只结束本系统会话 sign-out ends govhub's session only)"))
	line("后端通道退出 backchannel_logout_supported", yes(d.meta.BackChannelLogout))
	line("后端通道 sid backchannel_logout_session", yes(d.meta.BackChannelLogoutSession))
	line("请求范围 scopes requested", strings.Join(cfg.Scopes, " "))
	line("用户信息 claims from userinfo", yes(cfg.ClaimsFromUserInfo))
	b.WriteString("\n在 OP 登记 register at the OP:\n")
	line("  redirect_uri", base+"/callback")
	line("  backchannel_logout_uri", base+"/backchannel-logout")
	line("  post_logout_redirect_uri", cfg.PostLogoutURL)
	b.WriteString("\n每次登录检查 checked on every sign-in: state (本浏览器 this browser), PKCE S256, nonce, " +
		"签名 signature (" + strings.Join(d.algs, "/") + "), iss, aud, azp, exp, iat, at_hash\n")
	var warn []string
	if !slices.Contains(d.meta.CodeChallengeMethods, "S256") {
		warn = append(warn, "OP 未声明 PKCE S256；本系统仍发送，OP 若不支持会拒绝或忽略 (the OP does not advertise PKCE S256; govhub sends it anyway)")
	}
	for _, a := range d.meta.Algorithms {
		if !slices.Contains(d.algs, a) {
			warn = append(warn, fmt.Sprintf("算法 %s 不被接受 (alg %s is never accepted)", a, a))
		}
	}
	if d.meta.EndSessionURL == "" {
		warn = append(warn, "OP 无 end_session_endpoint (no RP-initiated logout)")
	}
	if !d.meta.BackChannelLogout {
		warn = append(warn, "OP 未声明后端通道退出 (no back-channel logout advertised: sessions end only by timeout or sign-out here)")
	}
	if len(keys) == 0 {
		warn = append(warn, "JWKS 中没有可用密钥 (the JWKS holds no usable key: every sign-in would fail)")
	}
	for _, w := range warn {
		b.WriteString("注意 warning: " + w + "\n")
	}
	return b.String(), nil
}
