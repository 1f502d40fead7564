# normalise-x509.sed - masks what differs between two certificates of the
# same profile in `openssl x509 -noout -text`: serials, key bytes, key ids,
# signature values and dates.  Used by tests/integration/12_profiles.sh.
/^ *\([0-9a-fA-F][0-9a-fA-F]:\)*[0-9a-fA-F][0-9a-fA-F]:\{0,1\}$/d
s/Not Before: .*/Not Before: DATE/
s/Not After : .*/Not After : DATE/
