"""The embedded Wordle word list: 663 common five-letter English words, written for rlvr (no download).

Secrets are drawn from it and every guess must be in it. `WORDS` is sorted and has no duplicates.
"""

_TEXT = """
about above abuse actor acute admit adopt adult after again agent agree ahead alarm album alert alike alive
allow alone along alter among anger angle angry apart apple apply arena argue arise array aside asset audio
audit avoid award aware
badly baker basic basin beach beard beast begin being below bench berry birth black blade blame blank blast
blend bless blind block blood bloom board boast bonus boost booth bound brain brand brave bread break breed
brick bride brief bring broad broke brown brush build built bunch burst buyer
cabin cable camel canal candy cargo carry catch cause chain chair chalk charm chart chase cheap check cheek
cheer chess chest chief child chill china choir chose civil claim class clean clear clerk click cliff climb
clock close cloth cloud coach coast couch could count court cover crack craft crane crash crazy cream crime
crisp cross crowd crown crude crush curve cycle
daily dance dealt death debut delay depth diary dirty doubt dough draft drama drank drawn dream dress dried
drink drive drove dwarf
eager eagle early earth eight elbow elder elect elite empty enemy enjoy enter entry equal error essay event
every exact exist extra
faint fairy faith false fancy feast fence fever fewer fiber field fifth fifty fight final first flame flash
fleet flesh float flood floor flour fluid focus force forge forth forty forum found frame fresh front frost
fruit fully funny
ghost giant given glass globe glory glove grace grade grain grand grant grape graph grasp grass grave great
green greet grief grill grind gross group grove grown guard guess guest guide
habit happy harsh heart heavy hello hence honey honor horse hotel house human humor hurry
ideal image imply index inner input issue ivory
jelly jewel joint judge juice
knife knock known
label labor large laser later laugh layer learn least leave legal lemon level light limit linen liver local
lodge logic loose lover lower loyal lucky lunch
magic major maker march match maybe mayor meant medal media melon mercy merit metal meter might minor minus
mixed model money month moral motor mount mouse mouth movie music
naval nerve never newly night noble noise north novel nurse
ocean offer often olive onion opera orbit order other ought ounce outer owner
paint panel panic paper party pasta patch peace pearl penny phase phone photo piano piece pilot pitch place
plain plane plant plate plaza point polar pound power press price pride prime print prior prize proof proud
prove pupil
queen quick quiet quite quote
radio raise rally ranch range rapid ratio reach react ready realm rebel refer relax reply rider ridge rifle
right rigid risky rival river roast robot rocky rough round route royal rural
salad sauce scale scare scene scope score scout sense serve seven shade shake shall shape share shark sharp
sheep sheet shelf shell shift shine shirt shock shoot shore short shout sight silly since skill skirt slate
sleep slice slide slope small smart smell smile smoke snake solar solid solve sorry sound south space spare
speak speed spend spice spine spite split spoke sport spray squad stack staff stage stain stair stake stamp
stand start state steam steel steep stick still stock stone stood store storm story stove strap straw strip
stuck study stuff style sugar suite sunny super swamp swear sweat sweet swept swing sword
table taste teach tease teeth thank theme there thick thief thing think third those three threw throw thumb
tiger tight timer tired title toast today token topic torch total touch tough tower toxic trace track trade
trail train trait treat trend trial tribe trick tried troop truck truly trunk trust truth tulip twice twist
uncle under union unite unity until upper upset urban usage usual
valid value vapor video vigor virus visit vital vivid vocal voice voter
wagon waste watch water weary weird whale wheat wheel where which while white whole whose widow width woman
world worry worse worst worth would wound write wrong wrote
yacht yield young youth
zebra
"""

WORDS: tuple[str, ...] = tuple(_TEXT.split())
